"""Screenshots of the operator's console: test-artifacts/ always; docs/img/ for the tour's pictures on demand.

`E2E_UPDATE_DOCS=1 pytest tests/e2e/test_console_*.py` refreshes the pictures docs/operations.md shows
(tests/ops/test_operations_doc.py checks that each one it names exists and stays small)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DOCS_IMG = PROJECT_ROOT / "docs" / "img"
DOCS_SHOTS = {"draft", "publish-confirm", "user-overview", "request-log", "requeue-warning", "ledger", "decisions"}


def shot(page: Any, artifacts: Path, name: str) -> None:
    path = artifacts / f"console-{name}.png"
    page.screenshot(path=str(path))
    if name in DOCS_SHOTS and os.environ.get("E2E_UPDATE_DOCS") == "1":
        (DOCS_IMG / path.name).write_bytes(path.read_bytes())
