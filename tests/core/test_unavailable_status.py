"""One answer to "is this the database being unreachable": every class of DATABASE_ERRORS is a 503 for the
browser's pages (the chat's turn view and the middleware ask the same function), anything else a 500."""

from __future__ import annotations

import pytest

from claudeapp.core import unavailable


@pytest.mark.parametrize("error", unavailable.DATABASE_ERRORS, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_every_database_error_is_unavailable_and_a_503(error):
    exc = error("connection refused")
    assert unavailable.is_unavailable(exc) and unavailable.page_status(exc) == 503


@pytest.mark.parametrize("exc", [ValueError("bug"), KeyError("x"), RuntimeError("y")])
def test_anything_else_is_a_500(exc):
    assert not unavailable.is_unavailable(exc) and unavailable.page_status(exc) == 500
