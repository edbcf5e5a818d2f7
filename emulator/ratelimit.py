"""The emulated organisation's rate limits: token buckets that refill continuously, as the API's do.

One org for every key. Requests and uncached input tokens are taken on admission, output tokens
once known; the bucket may go negative so an expensive reply delays the next request.
"""

from __future__ import annotations

import math

from emulator.clock import rfc3339
from emulator.config import Config
from emulator.errors import ApiError

HeaderList = list[tuple[bytes, bytes]]


class Bucket:
    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(max(1, per_minute))
        self.rate = self.capacity / 60.0
        self.level = self.capacity
        self.updated = now
        self.limit_bytes = str(int(self.capacity)).encode()

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` is available (0 if it already is)."""
        return max(0.0, (amount - self.level) / self.rate)

    def reset_at(self, now: float) -> float:
        return now + max(0.0, self.capacity - self.level) / self.rate

    @property
    def remaining(self) -> int:
        return max(0, int(self.level))


class RateLimiter:
    def __init__(self, config: Config, now: float) -> None:
        self.enabled = config.ratelimit_enabled
        self.requests = Bucket(config.requests_per_minute, now)
        self.input = Bucket(config.input_tokens_per_minute, now)
        self.output = Bucket(config.output_tokens_per_minute, now)

    def _refill(self, now: float) -> None:
        for bucket in (self.requests, self.input, self.output):
            bucket.refill(now)

    def admit(self, input_tokens: int, now: float) -> None:
        """Take one request and the input tokens, or raise 429 with retry-after."""
        self._refill(now)
        if not self.enabled:
            return
        wait = max(self.requests.wait_for(1), self.input.wait_for(input_tokens), self.output.wait_for(1))
        if wait > 0:
            raise ApiError(429, headers={"retry-after": str(max(1, math.ceil(wait)))})
        self.requests.level -= 1
        self.input.level -= input_tokens

    def record_output(self, output_tokens: int, now: float) -> None:
        self._refill(now)
        if self.enabled:
            self.output.level -= output_tokens

    def headers(self, now: float) -> HeaderList:
        self._refill(now)
        tightest = min((self.input, self.output), key=lambda b: b.level / b.capacity)
        out: HeaderList = []
        for (limit, remaining, reset), bucket in zip(
            HEADER_NAMES, (self.requests, tightest, self.input, self.output), strict=True
        ):
            out.append((limit, bucket.limit_bytes))
            out.append((remaining, str(bucket.remaining).encode()))
            out.append((reset, rfc3339(bucket.reset_at(now)).encode()))
        return out


HEADER_NAMES = [
    tuple(f"anthropic-ratelimit-{kind}-{part}".encode() for part in ("limit", "remaining", "reset"))
    for kind in ("requests", "tokens", "input-tokens", "output-tokens")
]
