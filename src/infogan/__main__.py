import sys

from infogan.cli import main

sys.exit(main())
