"""Fault specs and the deterministic choice of which fault (if any) a request gets.

Spec grammar (header value, marker argument, or model_faults config value)::

    KIND[:ARG][:COUNT][@MODEL]

KIND is an HTTP status (400 401 402 403 404 409 413 429 500 503 504 529), 429-ms, 429-none,
stream-error, stream-error-after, stream-cut, drop or hang. ARG exists only for
stream-error-after and stream-cut (content chunks before the fault). COUNT limits the fault to the
first COUNT calls with an identical request body; MODEL limits it to requests for that model.
Several specs are tried in order and the first that applies fires, so ``[[fault:529:2]]
[[fault:500:1]]`` yields 529, 529, 500, then success.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from emulator.errors import ERROR_TYPES

WITH_ARG = {"stream-error-after": 3, "stream-cut": 3}
SPECIAL = frozenset({"429-ms", "429-none", "stream-error", "drop", "hang", *WITH_ARG})
STREAM_ONLY = frozenset({"stream-error", "stream-error-after"})


@dataclass(frozen=True)
class FaultSpec:
    kind: str
    raw: str
    arg: int = 0
    count: int | None = None
    model: str | None = None

    @property
    def status(self) -> int | None:
        head = self.kind.split("-")[0]
        return int(head) if head.isdigit() else None

    @property
    def preempts(self) -> bool:
        """Answered (or dropped) before any message starts."""
        return self.status is not None or self.kind in ("drop", "hang")


def parse_spec(raw: str) -> FaultSpec | None:
    spec, _, model = raw.strip().partition("@")
    kind, *numbers = spec.split(":")
    if kind not in SPECIAL and not (kind.isdigit() and int(kind) in ERROR_TYPES):
        return None
    if not all(n.isdigit() for n in numbers):
        return None
    values = [int(n) for n in numbers]
    arg = WITH_ARG.get(kind, 0)
    if kind in WITH_ARG and values:
        arg = values.pop(0)
    count = values[0] if values else None
    return FaultSpec(kind, raw.strip(), arg, count, model.strip() or None)


@dataclass(frozen=True)
class Fault:
    spec: FaultSpec
    source: str  # "header", "marker", "model" or "random"

    def describe(self) -> str:
        return f"{self.source}:{self.spec.raw}"


class FaultBook:
    """Counters for COUNT-limited specs and the seeded RNG for configured error rates."""

    def __init__(self, seed: int) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.rng = random.Random(seed)

    def pick(self, specs: list[FaultSpec], model: str, stream: bool, key: str) -> FaultSpec | None:
        for spec in specs:
            if spec.model is not None and spec.model != model:
                continue
            if spec.kind in STREAM_ONLY and not stream:
                continue
            if spec.count is not None:
                seen = self.counts.get((key, spec.raw), 0) + 1
                self.counts[(key, spec.raw)] = seen
                if seen > spec.count:
                    continue
            return spec
        return None

    def draw(self, rates: dict[str, float]) -> FaultSpec | None:
        if not rates:
            return None
        roll = self.rng.random()
        threshold = 0.0
        for status in sorted(rates):
            threshold += float(rates[status])
            if roll < threshold:
                return parse_spec(status)
        return None
