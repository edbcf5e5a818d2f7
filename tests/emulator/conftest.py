"""Helpers for the emulator tests (the emulator fixtures come from tests.fixtures.emulator)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emulator.testing import EmulatorProcess

MODEL = "claude-sonnet-5-5"
API_HEADERS = {"x-api-key": "test-key", "anthropic-version": "2026-10-21"}


def params(text: str, **extra: Any) -> dict[str, Any]:
    """Minimal /v1/messages params for one user turn."""
    return {"model": MODEL, "max_tokens": 400, "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture(scope="session")
def raw_session(emulator: EmulatorProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, headers=API_HEADERS, timeout=10) as client:
        yield client


@pytest.fixture
def raw(emulator_reset: EmulatorProcess, raw_session: httpx.Client) -> httpx.Client:
    """A plain httpx client on a freshly reset emulator, with a key and the 2026-10-21 version header."""
    return raw_session
