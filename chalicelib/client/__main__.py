"""`python -m chalicelib.client --help`."""

import sys

from .cli import main

if __name__ == "__main__":  # importing this module (the Lambda smoke test imports every one) runs nothing
    sys.exit(main())
