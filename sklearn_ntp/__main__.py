"""``python -m sklearn_ntp``: the command line of :mod:`sklearn_ntp._cli._main`."""

import sys

from ._cli._main import main

if __name__ == "__main__":
    sys.exit(main())
