"""Prompt caching: hash the prefix up to each cache_control breakpoint, per (api key, model).

Within a TTL a repeated prefix is read (cache_read_input_tokens); otherwise breakpoints whose
prefix reaches the minimum size are written (cache_creation_input_tokens, split by 5m/1h TTL).
input_tokens is what remains after the last breakpoint (or everything, without breakpoints).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from emulator.tokens import Unit
from emulator.validation import MessageRequest

TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
MAX_ENTRIES = 100_000


@dataclass(frozen=True)
class CacheUsage:
    input_tokens: int
    creation_5m: int = 0
    creation_1h: int = 0
    read: int = 0

    @property
    def creation(self) -> int:
        return self.creation_5m + self.creation_1h


def breakpoints(req: MessageRequest, units: list[Unit]) -> list[tuple[int, str]]:
    """(unit index, ttl) for every breakpoint, including the top-level automatic one."""
    marks = [
        (i, u.block["cache_control"].get("ttl", "5m"))
        for i, u in enumerate(units)
        if u.block is not None and u.block.get("cache_control")
    ]
    if req.cache_control is not None:
        last = len(units) - 1
        if all(i != last for i, _ in marks):
            marks.append((last, req.cache_control.get("ttl", "5m")))
    return marks


def _canonical(unit: Unit) -> bytes:
    if unit.block is None:
        return unit.tag.encode()
    public: dict[str, Any] = {k: v for k, v in unit.block.items() if k != "cache_control"}
    return unit.tag.encode() + b"\x00" + json.dumps(public, sort_keys=True, separators=(",", ":")).encode()


def _prefix_keys(scope: str, units: list[Unit], marks: list[tuple[int, str]]) -> dict[int, bytes]:
    wanted = {i for i, _ in marks}
    digest = hashlib.blake2b(scope.encode(), digest_size=20)
    keys: dict[int, bytes] = {}
    for i in range(max(wanted) + 1):
        digest.update(_canonical(units[i]))
        digest.update(b"\x1e")
        if i in wanted:
            keys[i] = digest.copy().digest()
    return keys


class PromptCache:
    def __init__(self) -> None:
        self.entries: dict[bytes, float] = {}

    def clear(self) -> None:
        self.entries.clear()

    def apply(
        self, scope: str, units: list[Unit], marks: list[tuple[int, str]], minimum: int, now: float
    ) -> CacheUsage:
        total = sum(u.tokens for u in units)
        if not marks:
            return CacheUsage(input_tokens=total)
        cumulative = _cumulative(units)
        keys = _prefix_keys(scope, units, marks)
        read_upto, hit = self._longest_hit(marks, keys, cumulative, now)
        written = {"5m": 0, "1h": 0}
        boundary = read_upto
        for index, ttl in marks:
            if index <= hit or cumulative[index] < minimum:
                continue
            written[ttl] += cumulative[index] - boundary
            boundary = cumulative[index]
            self._store(keys[index], now + TTL_SECONDS[ttl])
        return CacheUsage(total - boundary, written["5m"], written["1h"], read_upto)

    def _longest_hit(
        self, marks: list[tuple[int, str]], keys: dict[int, bytes], cumulative: list[int], now: float
    ) -> tuple[int, int]:
        for index, ttl in reversed(marks):
            expires = self.entries.get(keys[index])
            if expires is not None and expires > now:
                self.entries[keys[index]] = max(expires, now + TTL_SECONDS[ttl])  # a hit refreshes the TTL
                return cumulative[index], index
        return 0, -1

    def _store(self, key: bytes, expires: float) -> None:
        if len(self.entries) >= MAX_ENTRIES:
            for old in list(self.entries)[: MAX_ENTRIES // 10]:
                del self.entries[old]
        self.entries[key] = expires


def _cumulative(units: list[Unit]) -> list[int]:
    out, running = [], 0
    for unit in units:
        running += unit.tokens
        out.append(running)
    return out
