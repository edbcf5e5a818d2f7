"""A wall clock that tests can move forward (batches, cache TTLs and rate limits read it)."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> float:
        self.offset += seconds
        return self.now()

    def reset(self) -> None:
        self.offset = 0.0


def rfc3339(ts: float) -> str:
    """RFC 3339 with a Z suffix and whole seconds, as the API prints timestamps."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
