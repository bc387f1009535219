"""benchmark/distributed.py: sharding covers every item once, and gather brings every rank's part to rank 0."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from benchmark.distributed import Context, gather, shard


def test_shards_cover_every_item_once():
    items = list(range(11))
    shards = [shard(items, Context(r, 3, torch.device("cpu"))) for r in range(3)]
    assert shards == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8]]
    assert sorted(sum(shards, [])) == items


def test_single_process_gather():
    assert gather({"a": 1}, Context(0, 1, torch.device("cpu"))) == [{"a": 1}]


def test_gather_over_two_gloo_ranks(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""
        import sys
        from benchmark import distributed
        ctx = distributed.init("cpu")
        mine = [x * 10 for x in distributed.shard(list(range(7)), ctx)]
        shards = distributed.gather(mine, ctx)
        if ctx.is_main:
            open(sys.argv[1], "w").write(repr(shards))
        distributed.close(ctx)
    """))
    out = tmp_path / "result.txt"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script), str(out)], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.read_text() == repr([[0, 20, 40, 60], [10, 30, 50]])  # rank order
