"""``python -m kmlp``: the same as the ``kmlp`` command."""

import sys

from .cli import main

sys.exit(main())
