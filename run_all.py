#!/usr/bin/env python
"""Entry point: ``python run_all.py --task sr`` (see ``--help``)."""
import sys

from benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
