"""Same as ``manualgrad experiment hinge-vs-ce [--quick]``."""

import sys

from manualgrad.experiments import main

if __name__ == "__main__":
    sys.exit(main(["hinge-vs-ce", *sys.argv[1:]]))
