"""``python -m sklearn_ntp``: the command line of :mod:`sklearn_ntp._cli`."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
