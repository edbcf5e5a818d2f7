"""Stay under the org's Anthropic limits across the whole deployment.

`observe_upstream` learns each model's limits from `anthropic-ratelimit-*` response headers;
`upstream_wait_seconds` takes a request's share (1 request, its input tokens) from that learned
room, or says how long to wait until it fits. Both are one Redis call. With nothing learned yet,
or Redis down, the answer is 0: go (Anthropic's own 429 is the backstop).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import redis

from billing import redisconn

log = logging.getLogger(__name__)

_AXES = ("requests", "tokens", "input-tokens", "output-tokens")
_SCRIPT_SOURCE = (Path(__file__).parent / "upstream.lua").read_text()
_scripts: dict[int, object] = {}
_TTL_MS = 5 * 60 * 1000  # forget what we learned after 5 quiet minutes; limits change rarely
# A caller's own writes on the take's round trip: queues them on the pipeline, returns what takes their replies.
Also = Callable[[Any], Callable[[list[Any] | None], None]]


def _script():  # type: ignore[no-untyped-def]
    client = redisconn.client()
    found = _scripts.get(id(client))
    if found is None:
        found = _scripts[id(client)] = client.register_script(_SCRIPT_SOURCE)
    return found


def _key(model_id: str, axis: str) -> str:
    return redisconn.key("upstream", model_id, axis)


def observe_upstream(*, model_id: str, headers: Mapping[str, str], pipe: redisconn.Batch | None = None) -> None:
    """Record the limit/remaining pairs a response carried (header names case-insensitive).
    With `pipe` (redisconn.batch) the write is only queued there."""
    lowered = {k.lower(): v for k, v in headers.items()}
    keys: list[str] = []
    args: list[object] = ["observe"]
    for axis in _AXES:
        limit = _number(lowered.get(f"anthropic-ratelimit-{axis}-limit"))
        remaining = _number(lowered.get(f"anthropic-ratelimit-{axis}-remaining"))
        if limit and remaining is not None:
            keys.append(_key(model_id, axis))
            args += [limit, remaining]
    if not keys:
        return
    if pipe is not None:
        pipe.script(_script(), keys=keys, args=[*args, _TTL_MS])
        return
    try:
        _script()(keys=keys, args=[*args, _TTL_MS])
    except redisconn.UNAVAILABLE as exc:
        log.warning("billing: could not record upstream limits (%s)", exc)


def give_back(*, model_id: str, input_tokens: int) -> None:
    """Return what `upstream_wait_seconds` took (it answered 0) for a call refused before it was sent."""
    keys, costs = _costs(model_id, input_tokens)
    try:
        _script()(keys=keys, args=["give", *costs])
    except redisconn.UNAVAILABLE as exc:
        log.warning("billing: could not give back upstream room (%s)", exc)


def _costs(model_id: str, input_tokens: int) -> tuple[list[str], list[int]]:
    """A call's keys and its cost on each, in the script's order."""
    costs = {"requests": 1, "tokens": input_tokens, "input-tokens": input_tokens, "output-tokens": 0}
    return [_key(model_id, a) for a in _AXES], [costs[a] for a in _AXES]


def upstream_wait_seconds(
    *, model_id: str, input_tokens: int, also: Also | None = None, meanwhile: Callable[[], None] | None = None
) -> float:
    """0 = send now (its share is taken); otherwise seconds until the org's limits have room for it.

    `also(pipe)` queues writes of the caller's own on the same pipeline (one round trip for both) and
    returns what to call with their replies: a list, or None when Redis could not be reached. `meanwhile()`
    runs once, always: with `also`, while Redis works on the round trip (redisconn.execute_overlapped)."""
    keys, costs = _costs(model_id, input_tokens)
    args: list[object] = ["take", *costs]
    script = _script()
    try:
        if also is None:
            if meanwhile is not None:
                meanwhile()
            return int(script(keys=keys, args=args)) / 1e6
        pipe = redisconn.client().pipeline(transaction=False)
        pipe.evalsha(script.sha, len(keys), *keys, *args)
        replied = also(pipe)
        try:
            if meanwhile is None:
                taken, *theirs = pipe.execute(raise_on_error=False)
            else:
                taken, *theirs = redisconn.execute_overlapped(pipe, meanwhile)
        except redisconn.UNAVAILABLE:
            replied(None)
            raise
        replied(theirs)
        if isinstance(taken, redis.exceptions.NoScriptError):  # Redis restarted or flushed: load and run
            taken = script(keys=keys, args=args)
        elif isinstance(taken, Exception):
            raise taken
        return int(taken) / 1e6
    except redisconn.UNAVAILABLE as exc:
        log.warning("billing: upstream limiter unavailable (%s); not waiting", exc)
        return 0.0


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def learned(*, model_id: str, now_us: float) -> dict[str, tuple[float, float]]:
    """{axis: (room now, limit)} for what was learned of `model_id`'s org limits (empty: nothing learned
    in the last 5 minutes). Room refills as upstream.lua computes it. Raises redisconn.UNAVAILABLE."""
    client = redisconn.client()
    pipe = client.pipeline(transaction=False)
    for axis in _AXES:
        pipe.hmget(_key(model_id, axis), "limit", "remaining", "at")
    found: dict[str, tuple[float, float]] = {}
    for axis, (limit, remaining, at) in zip(_AXES, pipe.execute(), strict=True):
        if limit is None or remaining is None or at is None:
            continue
        limit_f = float(limit)
        room = float(remaining) + limit_f * max(now_us - float(at), 0.0) / 60e6
        found[axis] = (max(min(room, limit_f), 0.0), limit_f)
    return found
