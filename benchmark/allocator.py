"""Large CPU tensors on 2 MiB transparent huge pages, so that the memory of a freed feature map costs one page
fault per 2 MiB, not per 4 KiB, when it is mapped again.

glibc serves each allocation above its mmap threshold (at most 32 MiB) with fresh pages and unmaps them on free,
so a network whose inputs change size on every call faults every page of every large feature map in again.
PyTorch's CPU allocator puts tensors of 2 MiB and more on transparent huge pages when ``THP_MEM_ALLOC_ENABLE=1``
is in the environment at its first allocation (PyTorch >= 2.2); the memory is still returned to the system on
free, so peak memory stays that of 4 KiB pages. (Keeping freed memory in glibc's heap instead, with ``mallopt``,
was about as fast but fragmented the heap without bound on the face task; README, Performance.)
"""
from __future__ import annotations

import os
from pathlib import Path

SWITCH = "THP_MEM_ALLOC_ENABLE"  # PyTorch's own; THP_MEM_ALLOC_ENABLE=0 in the environment keeps 4 KiB pages
THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def use_huge_pages() -> bool:
    """Ask PyTorch for transparent huge pages unless the environment already says (``THP_MEM_ALLOC_ENABLE=0``
    keeps 4 KiB pages); returns whether they are asked for and the kernel has them (Linux, THP mode ``always`` or
    ``madvise``). PyTorch reads the switch once, at the process's first tensor, so `benchmark/__init__.py` calls
    this before any of the suite's modules makes one."""
    if not huge_pages_available():
        return False
    os.environ.setdefault(SWITCH, "1")
    return os.environ[SWITCH] != "0"


def huge_pages_available() -> bool:
    try:
        return "[never]" not in THP_MODE.read_text()
    except OSError:  # not Linux, or a kernel without THP
        return False
