"""``python -m manualgrad``: the same as the ``manualgrad`` command."""

import sys

from manualgrad.cli import main

sys.exit(main())
