"""carsr-bench: does restoring a low-quality image first help downstream vision models?"""
__version__ = "0.1.0"
