"""``python -m statarb.sim``: run the simulator in the foreground (see :mod:`.cli`)."""

import sys

from statarb.sim.cli import main

if __name__ == "__main__":
    sys.exit(main())
