"""What the emulator charged, per POST /v1/messages and per succeeded batch result (GET /_emulator/ledger).

Tests reconcile a gateway's own cost ledger against these records. Appending is O(1); a record
is appended before the last bytes of its response go out, so a client that has read a whole
answer (or an error) always finds its charge.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from emulator.cache import CacheUsage

ENDINGS = ("complete", "cut", "error", "disconnect", "refused")
ZERO = CacheUsage(0)


def usage(cache: CacheUsage, output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": cache.input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": cache.creation,
        "cache_read_input_tokens": cache.read,
    }


class Ledger:
    def __init__(self, size: int) -> None:
        self.charges: deque[dict[str, Any]] = deque(maxlen=max(1, size))

    def resized(self, size: int) -> Ledger:
        ledger = Ledger(size)
        ledger.charges.extend(self.charges)
        return ledger

    def record(
        self,
        *,
        request_id: str | None,
        message_id: str | None,
        model: str | None,
        stream: bool,
        ending: str,
        usage: dict[str, int],
        batch_id: str | None = None,
        custom_id: str | None = None,
    ) -> None:
        self.charges.append(
            {
                "request_id": request_id,
                "message_id": message_id,
                "model": model,
                "stream": stream,
                "batch": batch_id is not None,
                "ending": ending,
                "usage": usage,
                "batch_id": batch_id,
                "custom_id": custom_id,
                "time": time.time(),
            }
        )

    def find(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        """Charges oldest first; `filters` keeps those whose fields equal every given value."""
        if not filters:
            return list(self.charges)
        return [c for c in self.charges if all(c[k] == v for k, v in filters.items())]

    def clear(self) -> int:
        cleared = len(self.charges)
        self.charges.clear()
        return cleared
