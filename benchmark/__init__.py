"""carsr-bench: does restoring a low-quality image first help downstream vision models?"""
from benchmark.allocator import use_huge_pages

__version__ = "0.1.0"

use_huge_pages()  # before any tensor exists: PyTorch reads the switch at its first allocation
