"""Same as ``manualgrad experiment skip-connections [--quick]``."""

import sys

from manualgrad.experiments import main

if __name__ == "__main__":
    sys.exit(main(["skip-connections", *sys.argv[1:]]))
