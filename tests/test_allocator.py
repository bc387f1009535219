"""benchmark/allocator.py: importing the suite puts large tensors on huge pages, and the environment can say no."""
import os
import subprocess
import sys

import pytest

from benchmark import allocator

PROBE = """
import benchmark, resource, torch
def feature_maps():  # 40, 20 and 60 MB temporaries, above glibc's largest mmap threshold, as a network makes them
    for n in (10, 5, 15, 10):
        x = torch.ones(n * 2**20)
        (x * 2).add_(1)
feature_maps()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
feature_maps()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(switch: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != allocator.SWITCH} | ({allocator.SWITCH: switch} if switch else {})
    return int(subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                              check=True).stdout)


@pytest.mark.skipif(not allocator.huge_pages_available(), reason="the kernel has no transparent huge pages")
def test_importing_the_suite_maps_large_tensors_on_huge_pages():
    """A second pass over the same large temporaries faults every 4 KiB page in again (80 k faults here) unless
    they are on 2 MiB pages (4 k here)."""
    small = page_faults("0")
    huge = page_faults(None)
    assert small > 40_000
    assert huge < small / 5


@pytest.mark.parametrize("mode, env, asked, expected", [
    ("always [madvise] never", None, "1", True),
    ("[always] madvise never", "0", "0", False),   # the user's own switch wins
    ("always madvise [never]", None, None, False),  # the kernel has them off: nothing is asked
])
def test_use_huge_pages_follows_the_environment_and_the_kernel(tmp_path, monkeypatch, mode, env, asked, expected):
    (tmp_path / "enabled").write_text(mode + "\n")
    monkeypatch.setattr(allocator, "THP_MODE", tmp_path / "enabled")
    monkeypatch.delenv(allocator.SWITCH, raising=False)
    if env is not None:
        monkeypatch.setenv(allocator.SWITCH, env)
    assert allocator.use_huge_pages() is expected
    assert os.environ.get(allocator.SWITCH) == asked
