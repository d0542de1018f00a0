"""``python -m app.client score ...``."""

import sys

from app.client.cli import main

sys.exit(main())
