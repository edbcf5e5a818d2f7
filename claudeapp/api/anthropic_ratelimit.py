"""`anthropic-ratelimit-*` response headers: the tightest of the key's own limits and upstream's.

The key's own limits come from its rate-limit ticket (billing/limits.py, `x-ratelimit-*` with the
reset in seconds); upstream's from the `anthropic-ratelimit-*` headers of the reply that answered
(the organisation's limits, shared by every caller of this gateway). Per axis the header with fewer
requests or tokens remaining wins, so a client pacing itself on them stays under both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

AXES = ("requests", "tokens", "input-tokens", "output-tokens")
OWN_PREFIX = "x-ratelimit-"
ANTHROPIC_PREFIX = "anthropic-ratelimit-"


@dataclass(frozen=True)
class Window:
    limit: int
    remaining: int
    reset: dt.datetime


def own_windows(headers: Mapping[str, str], *, now: dt.datetime) -> dict[str, Window]:
    """The key's limits from `x-ratelimit-{limit,remaining,reset}-AXIS` (reset in seconds from now)."""
    windows = {}
    for axis in AXES:
        try:
            limit = int(headers[f"{OWN_PREFIX}limit-{axis}"])
            remaining = int(headers[f"{OWN_PREFIX}remaining-{axis}"])
            reset = now + dt.timedelta(seconds=float(headers[f"{OWN_PREFIX}reset-{axis}"]))
        except (KeyError, ValueError):
            continue
        windows[axis] = Window(limit, max(remaining, 0), reset)
    return windows


def upstream_windows(headers: Mapping[str, str]) -> dict[str, Window]:
    """Upstream's limits from `anthropic-ratelimit-AXIS-{limit,remaining,reset}` (reset RFC 3339)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    windows = {}
    for axis in AXES:
        try:
            limit = int(lowered[f"{ANTHROPIC_PREFIX}{axis}-limit"])
            remaining = int(lowered[f"{ANTHROPIC_PREFIX}{axis}-remaining"])
            reset = dt.datetime.fromisoformat(lowered[f"{ANTHROPIC_PREFIX}{axis}-reset"].replace("Z", "+00:00"))
        except (KeyError, ValueError):
            continue
        if reset.tzinfo is None:
            reset = reset.replace(tzinfo=dt.UTC)
        windows[axis] = Window(limit, max(remaining, 0), reset)
    return windows


def tightest(*sources: Mapping[str, Window]) -> dict[str, Window]:
    """Per axis, the window with the fewest remaining (on a tie, the one that resets last)."""
    chosen: dict[str, Window] = {}
    for windows in sources:
        for axis, window in windows.items():
            best = chosen.get(axis)
            if best is None or _tighter(window, best):
                chosen[axis] = window
    return chosen


def _tighter(window: Window, than: Window) -> bool:
    return (window.remaining, -window.reset.timestamp()) < (than.remaining, -than.reset.timestamp())


def render(windows: Mapping[str, Window]) -> dict[str, str]:
    headers = {}
    for axis, window in windows.items():
        headers[f"{ANTHROPIC_PREFIX}{axis}-limit"] = str(window.limit)
        headers[f"{ANTHROPIC_PREFIX}{axis}-remaining"] = str(window.remaining)
        reset = window.reset.astimezone(dt.UTC).replace(microsecond=0)
        headers[f"{ANTHROPIC_PREFIX}{axis}-reset"] = reset.isoformat().replace("+00:00", "Z")
    return headers


def headers(own: Mapping[str, str], upstream: Mapping[str, str] | None = None) -> dict[str, str]:
    """The `anthropic-ratelimit-*` headers for a reply: own ticket headers and upstream's, tightest per axis."""
    now = dt.datetime.now(dt.UTC)
    return render(tightest(own_windows(own, now=now), upstream_windows(upstream or {})))
