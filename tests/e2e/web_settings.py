"""Settings of the web process the browser tests start: the project's, with static files collected
into a temporary folder (the ASGI app serves STATIC_ROOT) so a test run never touches ./staticfiles."""

from __future__ import annotations

import os
from pathlib import Path

from claudeapp.settings import *  # noqa: F403

STATIC_ROOT = Path(os.environ["E2E_STATIC_ROOT"])
