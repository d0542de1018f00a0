"""``python -m scorer_client score ...``."""

import sys

from scorer_client.cli import main

sys.exit(main())
