"""CPU cost of the per-call instrumentation (metrics + the JSON call line), in microseconds per call.

    .venv/bin/python bench/instrumentation_overhead.py [--calls 20000]

No server, no database: it times, in this process, exactly what one non-streamed call adds:
the request context bind (middleware), two gateway hooks (attempt + result), the ledger counters
(tokens x4 classes + cost), the call counter and the JSON log line through settings.LOGGING's
formatter and filter (written to /dev/null). Run once with PROMETHEUS_MULTIPROC_DIR set (each
count is an mmap write, as in production) and once without (in-process counters).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@dataclass
class _Principal:
    kind: str = "partner_key"
    id: int = 42


@dataclass
class _Decision:
    model_id: str = "claude-sonnet-5-5"
    reason: str = "rule 'default' (#1)"
    decision_id: int | None = 1234


@dataclass
class _Admission:
    principal: _Principal = field(default_factory=_Principal)
    decision: _Decision = field(default_factory=_Decision)


@dataclass
class _Entry:
    input_tokens: int = 1200
    output_tokens: int = 300
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 800
    cost_micros: int = 8100


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--multiprocess", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    if args.multiprocess:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bench-prom-")
    os.environ.update(DJANGO_SETTINGS_MODULE="claudeapp.settings", DEBUG="0", SECRET_KEY="x" * 50, LOG_FORMAT="json")
    import django

    django.setup()
    devnull = open(os.devnull, "w")  # noqa: SIM115  (kept open for the run)
    for handler in logging.getLogger().handlers:
        handler.setStream(devnull)  # type: ignore[attr-defined]

    from claudeapp.calls import observe
    from claudeapp.calls.run import Ending
    from claudeapp.claude import gateway
    from claudeapp.claude.results import Attempt, GatewayResult
    from claudeapp.core import logcontext, metrics

    model = "claude-sonnet-5-5"
    attempt = Attempt(model, "ok", 200, 812.0, "req_up")
    result = GatewayResult(
        model_requested=model, model_used=model, attempts=[attempt], fallback_reason=None, request_id="req_up",
        message_id="msg_1", text="", content=[], stop_reason="end_turn", stop_sequence=None,
        usage={"input_tokens": 1200, "output_tokens": 300}, latency_ms=812.0, ttft_ms=None,
    )  # fmt: skip
    admission, entry, ending = _Admission(), _Entry(), Ending(result)
    record = observe.recording(lambda _admission, _ending: entry)

    def one_call() -> None:
        logcontext.bind(request_id="req_0123456789abcdef0123456789abcdef", surface=logcontext.surface_of("/api/v1/x"))
        gateway._observe_attempt(attempt)
        gateway._observe_result(result)
        metrics.billed(model=model, principal_kind="partner_key", input_tokens=1200, output_tokens=300,
                       cache_write_tokens=0, cache_read_tokens=800, cost_micros=8100)  # fmt: skip
        record(admission, ending)  # the call counter and the JSON line

    def without_log() -> None:
        logcontext.bind(request_id="req_0123456789abcdef0123456789abcdef", surface="api")
        gateway._observe_attempt(attempt)
        gateway._observe_result(result)
        metrics.billed(model=model, principal_kind="partner_key", input_tokens=1200, output_tokens=300,
                       cache_write_tokens=0, cache_read_tokens=800, cost_micros=8100)  # fmt: skip
        metrics.call_ended(surface="api", status="complete", model=model)

    for label, step in (("metrics + JSON call line", one_call), ("metrics only", without_log)):
        for _ in range(2_000):  # warm: label children created, files mapped
            step()
        best = min(_time(step, args.calls) for _ in range(5))
        mode = "multiprocess (mmap)" if args.multiprocess else "in-process"
        print(f"{label:28s} {mode:20s} {best:6.1f} µs per call (best of 5 x {args.calls})")


def _time(step, n: int) -> float:  # type: ignore[no-untyped-def]
    started = time.process_time()
    for _ in range(n):
        step()
    return (time.process_time() - started) / n * 1e6


if __name__ == "__main__":
    main()
