"""Train and log to TensorBoard: ``python scripts/train.py [options]`` = ``manualgrad train``."""

import sys

from manualgrad.train.cli import main

if __name__ == "__main__":
    sys.exit(main())
