"""Same as ``manualgrad experiment optimizers [--quick]``."""

import sys

from manualgrad.experiments import main

if __name__ == "__main__":
    sys.exit(main(["optimizers", *sys.argv[1:]]))
