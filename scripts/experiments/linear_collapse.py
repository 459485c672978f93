"""Same as ``manualgrad experiment linear-collapse [--quick]``."""

import sys

from manualgrad.experiments import main

if __name__ == "__main__":
    sys.exit(main(["linear-collapse", *sys.argv[1:]]))
