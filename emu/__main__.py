"""``python -m emu``: the same entry point as the ``emu`` console script."""

import sys

from emu.cli import main

sys.exit(main())
