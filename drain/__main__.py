"""``python -m drain``: the ``drain`` command."""

import sys

from drain.cli import main

sys.exit(main())
