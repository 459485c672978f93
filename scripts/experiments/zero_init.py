"""Same as ``manualgrad experiment zero-init [--quick]``."""

import sys

from manualgrad.experiments import main

if __name__ == "__main__":
    sys.exit(main(["zero-init", *sys.argv[1:]]))
