"""`python -m ftreview`: the same command as `ftreview`."""

from __future__ import annotations

import sys

from ftreview.cli import main

sys.exit(main())
