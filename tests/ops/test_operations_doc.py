"""docs/operations.md's operator's tour: every picture it shows is in docs/img, a small PNG, and one the
Chromium console tests write (`E2E_UPDATE_DOCS=1 pytest tests/e2e/test_console_*.py` refreshes them)."""

from __future__ import annotations

import re

from tests.e2e.shots import DOCS_IMG, DOCS_SHOTS, PROJECT_ROOT

MAX_BYTES = 200_000


def test_every_picture_in_the_tour_exists_is_a_small_png_and_is_made_by_a_console_test():
    text = (PROJECT_ROOT / "docs" / "operations.md").read_text()
    pictures = re.findall(r"\]\(img/([^)]+)\)", text)
    assert len(pictures) >= 7
    for name in pictures:
        path = DOCS_IMG / name
        assert path.exists(), f"{name} is referenced but not in docs/img"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size < MAX_BYTES, name
        assert re.fullmatch(r"console-(.+)\.png", name).group(1) in DOCS_SHOTS, f"no console test writes {name}"
