"""``python -m minray.compat script.py [args ...]``: run a Ray program on minray."""

import sys

from minray.compat import main

if __name__ == "__main__":
    sys.exit(main())
