"""Where a partner call's wall time goes: this project's ASGI app with timers around the phases of a call
(admission on its thread and its three round trips, the upstream call, the settlement, the whole request).
For benchmarks only (bench/lone_phases.sh); never mounted in a deployment.

    uvicorn bench.phase_timings:application ...   then SIGUSR1 writes the table to PHASES_OUT and starts afresh

The timers wrap module attributes the call path looks up at call time, so the code measured is the shipped
code; each adds ~1 us, against phases of hundreds. The timeline (at the table's end) gives, for the requests
that passed the same points in the same order, when each point came after the request reached the app and
the step from the point before; FINE_MARKS=1 adds admission's own steps and the reply's.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import os
import signal
import statistics
import time
from collections.abc import Callable
from typing import Any

from claudeapp.asgi import application as _application  # first: it sets Django up

# isort: split
from claudeapp.api import anthropic_views
from claudeapp.calls import admission, run, settlement
from claudeapp.claude import async_call, gateway

_samples: dict[str, list[float]] = {}
# The timeline: each request's points in the order they were passed, as ms after its arrival in the app.
_timelines: list[list[tuple[str, float]]] = []
_arrived: contextvars.ContextVar[tuple[float, list[tuple[str, float]]]] = contextvars.ContextVar("arrived")


def _record(phase: str, started: float) -> None:
    _samples.setdefault(phase, []).append((time.perf_counter() - started) * 1000)


def _timed(owner: Any, name: str, phase: str) -> None:
    inner: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(inner)
    def sync(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            _record(phase, started)

    @functools.wraps(inner)
    async def coro(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await inner(*args, **kwargs)
        finally:
            _record(phase, started)

    setattr(owner, name, coro if inspect.iscoroutinefunction(inner) else sync)


def _mark(point: str) -> None:
    arrived = _arrived.get(None)
    if arrived is not None:
        arrived[1].append((point, (time.perf_counter() - arrived[0]) * 1000))


def _marked(owner: Any, name: str, label: str) -> None:
    """Marks on the timeline when `label` starts and when it returns (copied contexts carry the arrival
    into tasks and the database threads)."""
    inner: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(inner)
    def sync(*args: Any, **kwargs: Any) -> Any:
        _mark(f"{label} starts")
        try:
            return inner(*args, **kwargs)
        finally:
            _mark(f"{label} returns")

    @functools.wraps(inner)
    async def coro(*args: Any, **kwargs: Any) -> Any:
        _mark(f"{label} starts")
        try:
            return await inner(*args, **kwargs)
        finally:
            _mark(f"{label} returns")

    setattr(owner, name, coro if inspect.iscoroutinefunction(inner) else sync)


# The timeline's points, wrapped first so that they sit inside the timers below.
_marked(run, "_admit", "admission on its thread")
_marked(admission.budgets, "take", "budget hold")
_marked(async_call, "_acall", "upstream exchange")
if os.environ.get("FINE_MARKS"):  # admission's own steps, for a closer look
    from billing import limits, redisconn, upstream
    from claudeapp.calls import accounting, inflight
    from routing import services as routing

    _marked(accounting, "local_bound", "  local input bound")
    _marked(routing, "plan", "  routing plan")
    _marked(routing, "decide", "  routing decide")
    _marked(admission, "_ready", "  hold readied")
    _marked(limits, "ask", "  limits asked")
    _marked(inflight, "start_on", "  write-ahead record queued")
    _marked(upstream, "upstream_wait_seconds", "  org room round trip")
    _marked(redisconn, "execute_overlapped", "  overlapped execute")
    _marked(routing, "stored", "  decision stored")
    from billing import budgets, prices
    from claudeapp.api import gateway_headers
    from routing import modelmap

    _marked(anthropic_views, "json_object", "  body parsed")
    _marked(anthropic_views, "anthropic_request", "  request validated")
    _marked(run, "cap_max_tokens", "  max_tokens capped")
    _marked(modelmap, "get_model_map", "  model map")
    _marked(budgets, "covering_ids", "  covering budgets")
    _marked(prices, "current_price", "  current price")
    _marked(anthropic_views, "anthropic_body", "  reply body built")
    _marked(gateway_headers, "for_reply", "  reply headers")
_marked(run, "admit", "admission with its hop")
_marked(gateway, "acomplete", "gateway call (breaker, exchange, result)")
_marked(run, "complete", "run.complete")

_timed(run, "admit", "admission, with its thread hop")
_timed(run, "_admit", "admission on its thread")
_timed(admission.limits, "acquire", "  rate limits on their own (Redis; limits first)")
_timed(admission.budgets, "take", "  budget hold (Postgres; inside the Redis round trip, hold first)")
_timed(admission, "_wait_for_upstream_room", "  upstream room + in-flight record (+ rate limits, hold first) (Redis)")
_timed(gateway, "acomplete", "upstream call")
_timed(run._Pump, "_read", "upstream stream read (streamed)")
_timed(run._Pump, "_finish", "stream's ending recorded (streamed)")
_timed(run, "complete", "the upstream call as the view sees it")
_marked(anthropic_views, "messages", "the view")
_timed(anthropic_views, "messages", "the view (/anthropic/v1/messages)")  # before the URL conf is read
_timed(settlement, "settle", "settlement on its thread (after the reply)")


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        await _application(scope, receive, send)
        return
    started = time.perf_counter()
    points: list[tuple[str, float]] = []
    _arrived.set((started, points))
    first = [True]

    async def timed_send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            _mark("response start to the server")
        if message["type"] == "http.response.body" and first[0]:
            first[0] = False
            _record("request in -> first body byte out", started)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            _record("request in -> reply out", started)
        await send(message)
        if message["type"] == "http.response.start":
            _mark("response start written")
        if message["type"] == "http.response.body" and not message.get("more_body"):
            _mark("last body byte handed to the server")
            _timelines.append(points)  # the after-reply work may add points to it still

    await _application(scope, receive, timed_send)
    _record("request in -> its after-reply work done", started)


def _write(*_: Any) -> None:
    with open(os.environ.get("PHASES_OUT", "/tmp/phases.txt"), "w") as out:
        for phase, samples in _samples.items():
            p99 = sorted(samples)[int(0.99 * (len(samples) - 1))]
            out.write(f"{phase:46s} n={len(samples):5d} p50 {statistics.median(samples):7.3f} ms  p99 {p99:9.3f}\n")
        _write_timeline(out)
    _samples.clear()
    _timelines.clear()


def _write_timeline(out: Any) -> None:
    """The points of the requests that passed the commonest sequence of them: p50 of each point's offset and
    of the step from the point before (the steps' p50s need not add up to the offsets')."""
    shapes: dict[tuple[str, ...], list[list[float]]] = {}
    for points in _timelines:
        shapes.setdefault(tuple(p for p, _ in points), []).append([at for _, at in points])
    if not shapes:
        return
    names, runs = max(shapes.items(), key=lambda item: len(item[1]))
    out.write(f"timeline of {len(runs)} of {len(_timelines)} requests (ms after arrival; step from the point before)\n")
    for i, name in enumerate(names):
        at = statistics.median(run[i] for run in runs)
        steps = sorted(run[i] - (run[i - 1] if i else 0.0) for run in runs)
        p90 = steps[int(0.9 * (len(steps) - 1))]
        out.write(f"  {at:9.3f}  +{statistics.median(steps):7.3f} (p90 {p90:7.3f})  {name}\n")


signal.signal(signal.SIGUSR1, _write)
if os.environ.get("SWITCH_INTERVAL"):  # an experiment's knob: the interpreter's GIL hand-off interval, seconds
    import sys

    sys.setswitchinterval(float(os.environ["SWITCH_INTERVAL"]))
