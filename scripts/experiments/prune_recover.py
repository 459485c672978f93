"""Same as ``manualgrad experiment prune-recover [--quick]``."""

import sys

from manualgrad.experiments import main

if __name__ == "__main__":
    sys.exit(main(["prune-recover", *sys.argv[1:]]))
