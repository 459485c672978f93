"""Same as ``manualgrad experiment step-activation [--quick]``."""

import sys

from manualgrad.experiments import main

if __name__ == "__main__":
    sys.exit(main(["step-activation", *sys.argv[1:]]))
