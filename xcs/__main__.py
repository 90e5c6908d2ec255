"""``python -m xcs``: the ``xcs`` command (``xcs.cli``)."""

import sys

from xcs.cli import main

sys.exit(main())
