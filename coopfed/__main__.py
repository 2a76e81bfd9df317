"""``python -m coopfed``: the same as the ``coopfed`` command."""

import sys

from coopfed.cli.main import main

sys.exit(main())
