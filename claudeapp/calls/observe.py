"""A billed call's ending, for operators: the request counter and one structured log line per call.

run.py wraps the record step (and the failure step) of every call with `recording` / `failing`, so
the line is written once, where the ending is recorded, whatever the surface's own record step is;
`refused` does the same for a call refused before any upstream call (429, 402), and `batch_item` for a
Message Batches item, when its settlement applied (no call of ours ran it). Tokens and cost come
from what the record step billed. Never a key or prompt text: ids, model names, figures and error
types only (an upstream error's message can quote the request, so it is left out).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from billing.errors import BudgetExceeded, RateLimited
from claudeapp.calls.admission import Admission
from claudeapp.calls.errors import BUDGET, LIMIT, REFUSAL_STATUS, UpstreamBusy, refusal_kind
from claudeapp.claude.errors import NoModelAvailable, UpstreamError
from claudeapp.claude.results import GatewayResult
from claudeapp.core import logcontext, metrics

log = logging.getLogger("claudeapp.calls")

REFUSALS = (RateLimited, BudgetExceeded, UpstreamBusy)
BATCHES = "batches"  # the surface of Message Batches items, whichever process settles them
# Also handed every call's fields (the request log's in-process buffer registers here): each must be cheap.
_sinks: list[Callable[[dict[str, Any]], None]] = []


def add_sink(sink: Callable[[dict[str, Any]], None]) -> None:
    if sink not in _sinks:
        _sinks.append(sink)


def recording(record: Callable[[Admission, Any], Any]) -> Callable[[Admission, Any], Any]:
    """The record step, then the ending counted and logged (after it: the line carries the bill)."""

    def observed(admission: Admission, ending: Any) -> Any:
        recorded = record(admission, ending)
        _safely(ended, admission, ending, recorded)
        return recorded

    return observed


def failing(on_error: Callable[[Admission, BaseException], Any]) -> Callable[[Admission, BaseException], Any]:
    """The failure step (nothing reached the reader), then the failure counted and logged."""

    def observed(admission: Admission, error: BaseException) -> Any:
        recorded = on_error(admission, error)
        _safely(failed, admission, error, recorded)
        return recorded

    return observed


def ended(admission: Admission, ending: Any, recorded: Any) -> None:
    result: GatewayResult = ending.result
    status = status_of(ending)
    ctx = logcontext.current()
    metrics.call_ended(surface=ctx.surface or "other", status=status, model=result.model_used)
    if not (_sinks or log.isEnabledFor(logging.INFO)):
        return
    fields = _base(ctx, admission, status)
    fields.update(
        model_used=result.model_used,
        upstream_request_id=result.request_id or "",
        attempts=len(result.attempts),
        fallback=result.model_used != result.model_requested,
        latency_ms=round(result.latency_ms, 1),
        ttft_ms=round(result.ttft_ms, 1) if result.ttft_ms is not None else None,
        error_type=_error_type(ending.error) if ending.error is not None else None,
        **_billed(recorded, result.usage),
    )
    fields["duration_ms"] = _duration_ms(ctx)
    emit(fields)


def failed(admission: Admission, error: BaseException, recorded: Any) -> None:
    ctx = logcontext.current()
    attempts = list(getattr(error, "attempts", None) or [])
    model = attempts[-1].model if attempts else admission.decision.model_id
    metrics.call_ended(surface=ctx.surface or "other", status="failed", model=model)
    if not (_sinks or log.isEnabledFor(logging.INFO)):
        return
    fields = _base(ctx, admission, "failed")
    fields.update(
        model_used=model,
        upstream_request_id=getattr(error, "request_id", None) or next((a.request_id for a in reversed(attempts)
                                                                        if a.request_id), ""),
        attempts=len(attempts),
        error_type=_error_type(error),
        http_status=failure_status(error),
        **_billed(recorded, {}),
    )  # fmt: skip
    fields["duration_ms"] = _duration_ms(ctx)
    emit(fields)


def refused(*, principal: Any, requested_model: str, error: BaseException) -> None:
    """Refused before any upstream call: a limit (ours, or upstream room) or a budget, logged with its
    status from calls/errors.py's REFUSAL_STATUS (429, 402)."""
    ctx = logcontext.current()
    kind = BUDGET if isinstance(error, BudgetExceeded) else LIMIT
    metrics.refused(surface=ctx.surface or "other", kind=kind, model=requested_model)
    if not (_sinks or log.isEnabledFor(logging.INFO)):
        return
    emit(_before_upstream(ctx, "refused", REFUSAL_STATUS[kind], error, principal, requested_model))


# Set by `mark_not_admitted` on an error admission raised: who asked for which model.
_NOT_ADMITTED = "_claudeapp_not_admitted"


def mark_not_admitted(error: BaseException, *, principal: Any, requested_model: str) -> None:
    """Admission raised `error` (not a refusal): the surface, which alone knows the status it answers
    with, logs it through `not_admitted` if that is the gateway's own failure (a 5xx)."""
    with contextlib.suppress(AttributeError):  # an exception type without a __dict__: it goes unlogged
        setattr(error, _NOT_ADMITTED, (principal, requested_model))


def not_admitted(error: BaseException, *, http_status: int) -> None:
    """A call the gateway failed to admit on its own account (a 5xx before any upstream call: the
    database gone, a bug): counted and logged as failed with the status the caller got, so an operator
    sees it beside the calls that did run. A caller's mistake (a 4xx) is not a call and is not logged,
    nor is an error admission did not raise (a failed call after it is logged where it is recorded)."""
    marked = getattr(error, _NOT_ADMITTED, None)
    if marked is None or http_status < 500:
        return
    principal, requested_model = marked
    ctx = logcontext.current()
    metrics.call_ended(surface=ctx.surface or "other", status="failed", model=requested_model)
    if not (_sinks or log.isEnabledFor(logging.INFO)):
        return
    emit(_before_upstream(ctx, "failed", http_status, error, principal, requested_model))


def _before_upstream(
    ctx: logcontext.Context, status: str, http_status: int, error: BaseException, principal: Any, requested_model: str
) -> dict[str, Any]:
    """The line of a call that ended before any upstream call (refused, or not admitted)."""
    return {
        "event": "call",
        "status": status,
        "http_status": http_status,
        "error_type": _error_type(error),
        "principal_kind": principal.kind,
        "principal_id": principal.id,
        "model_requested": requested_model,
        "duration_ms": _duration_ms(ctx),
    }


def interrupted(*, record: Any, entry: Any) -> None:
    """A call whose process died mid-call, settled by the reaper (calls/inflight.py): counted and
    logged once, with the surface and request id it had, status `interrupted`."""
    model = record.get("model_used") or record.get("model") or ""
    metrics.call_ended(surface=record.get("surface") or "other", status="interrupted", model=model)
    if not (_sinks or log.isEnabledFor(logging.INFO)):
        return
    logcontext.bind(request_id=record.get("req") or None, surface=record.get("surface") or "")
    fields = {
        "event": "call",
        "status": "interrupted",
        "error_type": "process_died",
        "principal_kind": record.get("pk") or "",
        "principal_id": int(record.get("pid") or 0),
        "model_requested": record.get("model") or "",
        "model_used": model,
        "upstream_request_id": record.get("rid") or "",
        "duration_ms": None,
        **_billed(entry, {}),
    }
    emit(fields)


def batch_item(
    *,
    request_id: str,
    status: str,
    principal_kind: str,
    principal_id: int,
    model_requested: str,
    model_used: str,
    upstream_request_id: str,
    entry: Any = None,
    error_type: str | None = None,
    http_status: int | None = None,
    route_decision_id: int | None = None,
    route_reason: str = "",
    job_id: str | None = None,
    **extra: Any,
) -> None:
    """One Message Batches item settled (a partner batch's request, api/anthropic_batches.py, or a batch
    job's, jobs/batches.py): counted and logged under the surface `batches`, with `request_id` as its
    request id. Their settlements call it once per item, after the commit of the conditional update that
    applied it, so a settlement redone (a re-poll, a read racing the beat) logs nothing twice. `status`:
    complete (billed: `entry` is its ledger line), failed (`error_type` says why; nothing billed) or, for a
    batch job refused before its batch went up, refused (`http_status` 429 or 402, counted as a refusal).
    An item has no call of its own to time: no duration, and an HTTP status only for a refusal or a
    refused create. `extra` goes on the log line only."""
    fields = {
        "event": "call",
        "status": status,
        "principal_kind": principal_kind,
        "principal_id": principal_id,
        "route_decision_id": route_decision_id,
        "route_reason": route_reason,
        "model_requested": model_requested,
        "model_used": model_used,
        "upstream_request_id": upstream_request_id,
        "error_type": error_type,
        "http_status": http_status,
        "duration_ms": None,
        **_billed(entry, {}),
        **extra,
    }
    _safely(_batch_item, fields, request_id, job_id)


def _batch_item(fields: dict[str, Any], request_id: str, job_id: str | None) -> None:
    model = fields["model_used"] or fields["model_requested"]
    if fields["status"] == "refused":
        metrics.refused(surface=BATCHES, kind=refusal_kind(fields["http_status"]), model=model)
    else:
        metrics.call_ended(surface=BATCHES, status=fields["status"], model=model)
    if not (_sinks or log.isEnabledFor(logging.INFO)):
        return
    with logcontext.bound(request_id=request_id, surface=BATCHES, job_id=job_id):
        emit(fields)


# A stream that stopped without an error from upstream: it ended before message_stop, its connection
# dropped, or it went silent past the read timeout.
_CUT_TYPES = frozenset({"stream_cut", "connection_error", "timeout"})


def status_of(ending: Any) -> str:
    """complete, disconnect (the reader left; billed once read to the end), cut (the stream broke
    after output went out) or error (upstream sent an error event after output went out)."""
    if ending.detached:
        return "disconnect"
    if ending.error is not None:
        return "cut" if getattr(ending.error, "error_type", "") in _CUT_TYPES else "error"
    return "complete"


def _base(ctx: logcontext.Context, admission: Admission, status: str) -> dict[str, Any]:
    decision = admission.decision
    return {
        "event": "call",
        "status": status,
        "principal_kind": admission.principal.kind,
        "principal_id": admission.principal.id,
        "route_decision_id": decision.decision_id,
        "route_reason": decision.reason,
        "model_requested": decision.model_id,
    }


def _billed(recorded: Any, usage: dict[str, int]) -> dict[str, Any]:
    """Tokens and cost as billed: a LedgerEntry (the default record step), a chat Message (which
    carries the same figures), or, when nothing was billed, the usage upstream reported."""
    if hasattr(recorded, "cache_write_5m_tokens"):
        cache_write = recorded.cache_write_5m_tokens + recorded.cache_write_1h_tokens
    elif hasattr(recorded, "cache_write_tokens"):
        cache_write = recorded.cache_write_tokens
    else:
        return {
            "input_tokens": usage.get("input_tokens", 0),
            "output_tokens": usage.get("output_tokens", 0),
            "cache_write_tokens": usage.get("cache_creation_input_tokens", 0),
            "cache_read_tokens": usage.get("cache_read_input_tokens", 0),
            "cost_micros": 0,
        }
    return {
        "input_tokens": recorded.input_tokens,
        "output_tokens": recorded.output_tokens,
        "cache_write_tokens": cache_write,
        "cache_read_tokens": recorded.cache_read_tokens,
        "cost_micros": recorded.cost_micros,
    }


def emit(fields: dict[str, Any]) -> None:
    """One call's line, to every sink (the request log) and the "call ..." log line: for endings recorded
    outside this module (a job attempt's, claudeapp/ops/job_calls.py)."""
    for sink in _sinks:
        sink(fields)
    if not log.isEnabledFor(logging.INFO):
        return
    # The message repeats the key figures for the text format; the JSON format writes every field.
    log.info(
        "call %s model=%s in=%s out=%s cost_micros=%s",
        fields["status"], fields.get("model_used") or fields.get("model_requested"), fields.get("input_tokens", 0),
        fields.get("output_tokens", 0), fields.get("cost_micros", 0),
        extra=fields,
    )  # fmt: skip


def failure_status(error: BaseException) -> int | None:
    """A failed call's HTTP status: what upstream answered (the last model tried, when no model could
    answer; 529 when every circuit was open), else what the gateway answers for no HTTP answer: 504 for
    a timeout, 502 for a dropped connection. None for a failure that is not upstream's (a bug)."""
    if isinstance(error, NoModelAvailable):
        if error.last_error is None:
            return 529  # every circuit open: the gateway's one status for "nothing can answer now"
        error = error.last_error
    if not isinstance(error, UpstreamError):
        return None
    if error.status is not None:
        return error.status
    return 504 if error.error_type == "timeout" else 502


def _error_type(error: BaseException) -> str:
    return str(getattr(error, "error_type", None) or type(error).__name__)


def _duration_ms(ctx: logcontext.Context) -> float | None:
    return round((time.perf_counter() - ctx.started) * 1000, 1) if ctx.started else None


def _safely(step: Callable[..., None], *args: Any) -> None:
    try:
        step(*args)
    except Exception:  # counting and logging must never cost a call its bookkeeping
        log.warning("calls: could not observe a call's ending", exc_info=True)
