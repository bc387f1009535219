"""benchmark/report.py: atomic writes."""
import os

from benchmark.report import write_atomic


def test_atomic_writes_are_readable_like_plain_files(tmp_path):
    """``write_atomic`` replaces the file whole and keeps the permissions ``open`` would give (not mkstemp's 0600)."""
    umask = os.umask(0o022)
    try:
        write_atomic(tmp_path / "table.csv", "a,b\n")
        write_atomic(tmp_path / "table.csv", "a,b\n1,2\n")
    finally:
        os.umask(umask)
    assert (tmp_path / "table.csv").read_text() == "a,b\n1,2\n"
    assert (tmp_path / "table.csv").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]  # no temporary file left
