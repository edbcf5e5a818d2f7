"""A wall clock that tests can move forward (batches, cache TTLs and rate limits read it)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import lru_cache


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
    return _rfc3339_second(int(ts))


@lru_cache(maxsize=256)  # every response carries four reset timestamps; most share a second
def _rfc3339_second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
