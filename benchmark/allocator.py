"""Freed CPU memory kept for reuse (glibc malloc) instead of being returned to the system and faulted back in.

glibc serves each allocation above its mmap threshold (128 KiB, adapting up to 32 MiB) with fresh pages and
unmaps them on free, so every large feature map a network allocates costs a page fault per 4 KiB on first
touch; a restorer whose inputs change size on every call pays it on every tensor. Serving all allocations from
the heap and trimming it only past 256 MiB of free memory turns those into reuse of pages already mapped. PyTorch's CPU tuning guide gets
the same by preloading jemalloc or tcmalloc; this needs no preload. The cost is memory: up to 256 MiB of free heap
is kept, and the heap fragments. `cajnn_lite` (bf16) on the 12 largest IC13 crops: 1.13x faster, peak RSS 1.56 ->
2.24 GB (2.70 GB when keeping up to 2 GiB, at the same speed).
"""
from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters, glibc malloc.h
M_MMAP_MAX = -4
OPT_OUT = "CARSR_MALLOC"  # CARSR_MALLOC=default keeps glibc's own settings


def keep_freed_memory() -> bool:
    """Serve every allocation from the heap and keep up to 256 MiB of freed memory at its top. Returns whether
    the settings took: False off Linux/glibc, or with ``CARSR_MALLOC=default`` in the environment."""
    if not sys.platform.startswith("linux") or os.environ.get(OPT_OUT) == "default":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 256 * 2**20))
