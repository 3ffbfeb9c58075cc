"""Where the shared material lives: ``../shared`` beside the checkout (as in CI), or ``EMSP_SHARED_DIR``."""

from __future__ import annotations

import os
from pathlib import Path

SHARED = Path(os.environ.get("EMSP_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")
EXAMPLES = SHARED / "ocpi-2.2.1" / "examples"
NL_DATA = SHARED / "data" / "ocpi-nl-10-cities"
