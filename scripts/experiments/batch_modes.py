"""Same as ``manualgrad experiment batch-modes [--quick]``."""

import sys

from manualgrad.experiments import main

if __name__ == "__main__":
    sys.exit(main(["batch-modes", *sys.argv[1:]]))
