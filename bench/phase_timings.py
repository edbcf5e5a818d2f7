"""Where a partner call's wall time goes: this project's ASGI app with timers around the phases of a call
(admission on its thread and its three round trips, the upstream call, the settlement, the whole request).
For benchmarks only (bench/lone_phases.sh); never mounted in a deployment.

    uvicorn bench.phase_timings:application ...   then SIGUSR1 writes the table to PHASES_OUT and starts afresh

The timers wrap module attributes the call path looks up at call time, so the code measured is the shipped
code; each adds ~1 us, against phases of hundreds.
"""

from __future__ import annotations

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
from claudeapp.claude import gateway

_samples: dict[str, list[float]] = {}


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


_timed(run, "admit", "admission, with its thread hop")
_timed(run, "_admit", "admission on its thread")
_timed(admission.limits, "acquire", "  rate limits on their own (Redis; limits first)")
_timed(admission.budgets, "take", "  budget hold (Postgres; inside the Redis round trip, hold first)")
_timed(admission, "_wait_for_upstream_room", "  upstream room + in-flight record (+ rate limits, hold first) (Redis)")
_timed(gateway, "acomplete", "upstream call")
_timed(run._Pump, "_read", "upstream stream read (streamed)")
_timed(run._Pump, "_finish", "stream's ending recorded (streamed)")
_timed(run, "complete", "the upstream call as the view sees it")
_timed(anthropic_views, "messages", "the view (/anthropic/v1/messages)")  # before the URL conf is read
_timed(settlement, "settle", "settlement on its thread (after the reply)")


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        await _application(scope, receive, send)
        return
    started = time.perf_counter()
    first = [True]

    async def timed_send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and first[0]:
            first[0] = False
            _record("request in -> first body byte out", started)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            _record("request in -> reply out", started)
        await send(message)

    await _application(scope, receive, timed_send)
    _record("request in -> its after-reply work done", started)


def _write(*_: Any) -> None:
    with open(os.environ.get("PHASES_OUT", "/tmp/phases.txt"), "w") as out:
        for phase, samples in _samples.items():
            p99 = sorted(samples)[int(0.99 * (len(samples) - 1))]
            out.write(f"{phase:46s} n={len(samples):5d} p50 {statistics.median(samples):7.3f} ms  p99 {p99:9.3f}\n")
    _samples.clear()


signal.signal(signal.SIGUSR1, _write)
if os.environ.get("SWITCH_INTERVAL"):  # an experiment's knob: the interpreter's GIL hand-off interval, seconds
    import sys

    sys.setswitchinterval(float(os.environ["SWITCH_INTERVAL"]))
