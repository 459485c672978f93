"""Same as ``manualgrad experiment early-stopping [--quick]``."""

import sys

from manualgrad.experiments import main

if __name__ == "__main__":
    sys.exit(main(["early-stopping", *sys.argv[1:]]))
