"""Same as ``manualgrad experiment init-scale [--quick]``."""

import sys

from manualgrad.experiments import main

if __name__ == "__main__":
    sys.exit(main(["init-scale", *sys.argv[1:]]))
