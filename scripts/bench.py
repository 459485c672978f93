"""Benchmark manualgrad against native PyTorch: ``python scripts/bench.py [suite] [--quick]``."""

import sys

from manualgrad.bench import main

if __name__ == "__main__":
    sys.exit(main())
