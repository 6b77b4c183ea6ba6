"""`python -m infogan`: the command line."""

import sys

from infogan.cli import main

sys.exit(main())
