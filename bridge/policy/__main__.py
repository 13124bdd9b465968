"""`python -m bridge.policy …`: the policy commands before (or without) the `bridge` wiring."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
