"""``python -m cmi_toolkit.cli``: the same as the ``cmi-toolkit`` command."""

import sys

from .main import main

sys.exit(main())
