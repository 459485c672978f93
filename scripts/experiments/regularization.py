"""Same as ``manualgrad experiment regularization [--quick]``."""

import sys

from manualgrad.experiments import main

if __name__ == "__main__":
    sys.exit(main(["regularization", *sys.argv[1:]]))
