"""One billed call for async callers: admit, call the gateway, record the ending exactly once.

Every surface that answers in the request (chat turns, API conversation turns, stateless
`/api/v1/messages`, `/anthropic/v1/messages`) goes through `admit` and then `complete` or `stream`.

The upstream call runs in a task of its own, so the reader leaving (Stop, a closed tab, a dropped
connection) never cuts it: the task reads upstream to the end (bounded by max_tokens and
STREAM_DRAIN_SECONDS) and bills upstream's exact usage. Every ending is recorded by that task:

    complete      message_delta's usage, exact
    cut / error   message_start's input (exact) and an output bound from every delta kind seen
    detached      as complete (the stream was read to its end without the reader)
    drain timeout the input bound and max_tokens: nothing better can be known
    failed        the tokens of attempts that failed after message_start, else nothing (hold released)

A retry or fallback after tokens were produced upstream bills those attempts too (summed into the
call's one ledger line). Database work runs in short steps on a worker thread that hands its
connection back to the pool, so a call waiting on upstream holds no connection.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings

from claudeapp.accounts.principals import Principal
from claudeapp.calls import admission as calls_admission
from claudeapp.calls import inflight, observe, settlement, yielding
from claudeapp.calls.admission import Admission
from claudeapp.calls.errors import MaxTokensTooLarge
from claudeapp.claude import gateway
from claudeapp.claude.results import (
    USAGE_KEYS,
    Attempt,
    GatewayResult,
    StreamEnd,
    StreamEvent,
    StreamStart,
    StreamTruncated,
    TextDelta,
)
from claudeapp.core.dbthread import in_db_thread
from claudeapp.core.unavailable import is_unavailable
from routing import modelmap

log = logging.getLogger(__name__)
_running: set[asyncio.Task[Any]] = set()  # calls whose reader left: kept alive until they settle


@dataclass(frozen=True)
class CallSpec:
    """What to ask upstream. `metadata` never reaches upstream as is (see `upstream_user_id`);
    `route_tags` only steer routing."""

    messages: Sequence[Mapping[str, Any]]
    max_tokens: int
    system: str | Sequence[Mapping[str, Any]] | None = None
    metadata: Mapping[str, Any] | None = None
    route_tags: Mapping[str, Any] = field(default_factory=dict)
    stop_sequences: Sequence[str] | None = None
    extra: Mapping[str, Any] | None = None  # tools, thinking, cache_control...: passed through untouched
    previous_model: str | None = None
    strict_max_tokens: bool = False  # the caller named a model: above its ceiling is a 400, not a silent cap
    headers: Mapping[str, str] | None = None  # sent upstream with the call (/anthropic: version and betas)
    direct: bool = False  # the caller retries itself: one attempt on the routed model, no retry, no fallback


@dataclass(frozen=True)
class Ending:
    """How a call ended, handed to the record step (settlement by default)."""

    result: GatewayResult
    error: Exception | None = None  # upstream broke after output went out
    detached: bool = False  # the reader left before the end
    seen_text: str = ""  # the text the reader received


@dataclass(frozen=True)
class Completed:
    admission: Admission
    result: GatewayResult
    entry: Any  # what the record step returned: the LedgerEntry by default
    truncated_by: Exception | None = None  # a stream that broke after output went out
    # `reply_first`: the answer came back (or the stream ended) before its bookkeeping, which this task
    # still runs; `entry` is None until then. For `complete` the task's result is the Completed with its entry.
    settling: asyncio.Task[Any] | None = None


@dataclass(frozen=True)
class Failed:
    """The call failed before any output reached the reader (only with an `on_error` step)."""

    error: BaseException
    recorded: Any


Record = Callable[[Admission, Ending], Any]
OnError = Callable[[Admission, BaseException], Any]
OnDetach = Callable[[Admission, str], Any]


def cap_max_tokens(max_tokens: int, model_name: str) -> int:
    """max_tokens capped by the model's max output. For a name that is not a model (`auto`), by the
    largest cap of the enabled models, so the budget hold is never for an impossible answer."""
    mm = modelmap.get_model_map()
    model_id = mm.model_id_for(model_name)
    if model_id is not None:
        caps = [mm.models[model_id].max_output_tokens]
    else:
        caps = [m.max_output_tokens for m in mm.enabled_models.values()]
    cap = max((c for c in caps if c), default=0)
    return min(max_tokens, cap) if cap else max_tokens


def check_max_tokens(max_tokens: int, model_name: str) -> None:
    """Anthropic's rule for a named model: above its ceiling is refused, not capped."""
    mm = modelmap.get_model_map()
    model_id = mm.model_id_for(model_name)
    if model_id is None:
        return
    ceiling = mm.models[model_id].max_output_tokens
    if ceiling and max_tokens > ceiling:
        raise MaxTokensTooLarge(max_tokens=max_tokens, model_id=model_id, ceiling=ceiling)


def upstream_user_id(principal: Principal) -> str:
    """The gateway's own opaque id for a principal: stable, not reversible, never the caller's value."""
    digest = hmac.new(settings.SECRET_KEY.encode(), principal.key.encode(), hashlib.sha256).hexdigest()
    return f"cgw-{digest[:32]}"


def _admit(
    *, principal: Principal, requested_model: str, spec: CallSpec, subject: str, streamed: bool | None = None
) -> tuple[Admission, CallSpec]:
    if spec.strict_max_tokens:
        check_max_tokens(spec.max_tokens, requested_model)
    spec = replace(spec, max_tokens=cap_max_tokens(spec.max_tokens, requested_model))
    try:
        admitted = calls_admission.admit(
            principal=principal,
            requested_model=requested_model,
            messages=spec.messages,
            system=spec.system,
            max_tokens=spec.max_tokens,
            extra=spec.extra,
            metadata={str(k): str(v) for k, v in spec.route_tags.items()},
            previous_model=spec.previous_model,
            subject=subject,
            decision_later=streamed is not None,  # a stateless call: nothing holds its decision as a key
            start=functools.partial(inflight.start_on, streamed=streamed) if streamed is not None else None,
        )
    except observe.REFUSALS as exc:  # 429 / 402: counted and logged as refused, then answered by the surface
        observe.refused(principal=principal, requested_model=requested_model, error=exc)
        raise
    except Exception as exc:  # logged by the surface if its answer is a 5xx (observe.not_admitted)
        observe.mark_not_admitted(exc, principal=principal, requested_model=requested_model)
        raise
    # `auto` may have chosen a model with a smaller ceiling than the largest.
    spec = replace(spec, max_tokens=cap_max_tokens(spec.max_tokens, admitted.decision.model_id))
    return admitted, spec


def admit_sync(
    *, principal: Principal, requested_model: str, spec: CallSpec, subject: str = ""
) -> tuple[Admission, CallSpec]:
    """`admit` for code already on a worker thread (the chat turn's prepare step)."""
    return _admit(principal=principal, requested_model=requested_model, spec=spec, subject=subject)


async def admit(
    *, principal: Principal, requested_model: str, spec: CallSpec, subject: str = "", streamed: bool | None = None
) -> tuple[Admission, CallSpec]:
    """Route, rate-limit and reserve. Raises routing.errors.*, billing.errors.* (nothing to undo then).

    `streamed` says the upstream call follows at once (the stateless surfaces): its write-ahead record
    is then written by admission's thread (calls/inflight.py), not by a task of the call's own."""
    with yielding.admitting():
        return await in_db_thread(_admit)(
            principal=principal, requested_model=requested_model, spec=spec, subject=subject, streamed=streamed
        )


def _params(admission: Admission, spec: CallSpec) -> dict[str, Any]:
    return {
        "models": admission.models[:1] if spec.direct else admission.models,
        "max_attempts": 1 if spec.direct else None,
        "headers": spec.headers,
        "messages": spec.messages,
        "max_tokens": spec.max_tokens,
        "system": spec.system,
        "metadata": {"user_id": upstream_user_id(admission.principal)},
        "stop_sequences": spec.stop_sequences,
        "extra": spec.extra,
    }


# --- recording ------------------------------------------------------------------------------


def event_key_for(result: GatewayResult) -> str:
    # One bill per upstream message: its id is unique upstream and stable across our retries.
    return f"upstream:{result.message_id or uuid.uuid4().hex}"


def billed_usage(result: GatewayResult, *, input_bound: int, max_tokens: int) -> dict[str, int]:
    """The call's usage plus what failed attempts before it consumed upstream (retries, fallbacks)."""
    earlier = [a for a in result.attempts if not (a.request_id and a.request_id == result.request_id)]
    return _add(dict(result.usage), attempts_usage(earlier, input_bound=input_bound, max_tokens=max_tokens) or {})


def attempts_usage(attempts: Sequence[Attempt], *, input_bound: int, max_tokens: int) -> dict[str, int] | None:
    """What failed attempts consumed upstream: a stream's usage up to its cut, or for a 200 whose
    JSON body was lost, the whole message upstream produced (bounded: input bound, max_tokens)."""
    total: dict[str, int] | None = None
    for attempt in attempts:
        if attempt.outcome == "ok":
            continue
        if attempt.body_lost:
            used = {"input_tokens": input_bound, "output_tokens": max_tokens}
        elif attempt.usage:
            used = dict(attempt.usage)
        else:
            continue
        total = _add(total or {}, used)
    return total


def _add(usage: dict[str, int], more: Mapping[str, int]) -> dict[str, int]:
    for key, value in more.items():
        usage[key] = usage.get(key, 0) + int(value or 0)
    for key in USAGE_KEYS:
        usage.setdefault(key, 0)
    return usage


def settle_ending(admission: Admission, ending: Ending) -> Any:
    """The default record step: one ledger line for the call."""
    result = ending.result
    return settlement.settle(
        admission=admission,
        usage=billed_usage(result, input_bound=admission.input_tokens, max_tokens=admission.max_tokens),
        event_key=event_key_for(result),
        kind="message",
        subject=result.message_id or "",
        model_used=result.model_used,
        upstream_request_id=result.request_id or "",
        upstream_message_id=result.message_id or "",
        ratelimit_headers=result.ratelimit_headers,
    )


def settle_failure(admission: Admission, error: BaseException) -> Any:
    """A call that failed before output reached anyone: bill what failed attempts consumed upstream
    (a stream cut after message_start, a 200 whose body was lost), else give the hold back."""
    attempts = list(getattr(error, "attempts", None) or [])
    usage = attempts_usage(attempts, input_bound=admission.input_tokens, max_tokens=admission.max_tokens)
    if usage is None:
        settlement.abandon(admission=admission)
        return None
    attempt = next(a for a in reversed(attempts) if a.usage or a.body_lost)
    return settlement.settle(
        admission=admission,
        usage=usage,
        event_key=f"upstream-failed:{attempt.request_id or uuid.uuid4().hex}",
        kind="message",
        subject=attempt.request_id or "",
        model_used=attempt.model,
        upstream_request_id=attempt.request_id or "",
    )


def _bound_result(admission: Admission, spec: CallSpec) -> GatewayResult:
    """The most the call can have cost: the input bound and every output token allowed."""
    return GatewayResult(
        model_requested=admission.decision.model_id, model_used=admission.decision.model_id, attempts=[],
        fallback_reason=None, request_id=None, message_id=None, text="", content=[], stop_reason=None,
        stop_sequence=None, usage={"input_tokens": admission.input_tokens, "output_tokens": spec.max_tokens},
        latency_ms=0.0, truncated=True,
    )  # fmt: skip


async def _in_db(step: Callable[..., Any], *args: Any) -> Any:
    # Shielded: a reader leaving cancels its own task, but the bookkeeping must still land.
    return await asyncio.shield(in_db_thread(step)(*args))


# --- complete -------------------------------------------------------------------------------


async def complete(
    *,
    admission: Admission,
    spec: CallSpec,
    record: Record | None = None,
    on_error: OnError | None = None,
    settles_as: inflight.SettlesAs | None = None,
    reply_first: bool = False,
    settle_after: Awaitable[Any] | None = None,
) -> Completed | Failed:
    """One full answer. The call and its bookkeeping run in their own task: a caller that leaves
    does not cut it. Gateway errors give the hold back and propagate; with `on_error` they are
    recorded by it and returned as Failed. `settles_as`: the event key and subject `record` bills
    under, for the write-ahead record (a call whose process dies is then billed under them).

    `reply_first`: return as soon as upstream has answered, with the bookkeeping (the end checkpoint,
    the settlement, the log line) still running in `Completed.settling`, for a caller whose reply
    does not carry the bill: the reader does not wait for it. Until it lands the hold stands for the
    bill (never less), and a process killed meanwhile leaves the write-ahead record to the reaper.
    `settle_after` (with `reply_first`): that bookkeeping starts once it is done (the reply is out:
    fastpath.reply_out), not beside the reply's last steps, which it would slow down by taking the
    interpreter from them on its thread. It must end whatever becomes of the request."""
    record = observe.recording(record or settle_ending)  # every ending counted and logged once, where it is recorded
    answered: asyncio.Future[GatewayResult] | None = asyncio.get_running_loop().create_future() if reply_first else None
    call = _complete(admission, spec, record, on_error, settles_as, answered, settle_after)
    task = _keep(asyncio.ensure_future(call))
    if answered is None:
        return await asyncio.shield(task)
    await asyncio.wait((task, answered), return_when=asyncio.FIRST_COMPLETED)  # a caller leaving cancels neither
    if task.done():
        return task.result()
    return Completed(admission, answered.result(), None, settling=task)


async def _complete(
    admission: Admission,
    spec: CallSpec,
    record: Record,
    on_error: OnError | None,
    settles_as: inflight.SettlesAs | None,
    answered: asyncio.Future[GatewayResult] | None = None,
    settle_after: Awaitable[Any] | None = None,
) -> Completed | Failed:
    tracker = inflight.for_call(admission=admission, streamed=False, settles_as=settles_as)  # the write-ahead record
    try:
        result = await gateway.acomplete(**_params(admission, spec))
    except Exception as exc:
        await tracker.landed()
        recorded = await _in_db(observe.failing(on_error or settle_failure), admission, exc)
        if on_error is None:
            raise
        return Failed(exc, recorded)
    await tracker.landed()
    if answered is None:
        return Completed(admission, result, await _in_db(_ended_then(record), admission, Ending(result)))
    answered.set_result(result)
    entry = await _settle_answered(admission, tracker, record, Ending(result), settle_after)
    return Completed(admission, result, entry)


async def _settle_answered(
    admission: Admission,
    tracker: inflight.Tracker,
    record: Record,
    ending: Ending,
    settle_after: Awaitable[Any] | None = None,
) -> Any:
    """The bookkeeping of a call whose reader has its answer already (`reply_first`): after the next calls'
    admissions, with the other answered calls' settlements. Its record step's value, or None when it failed
    (then left to the reaper)."""
    # The settlement's first statement puts upstream's figures on the write-ahead record. One that will wait
    # (admissions under way, or settlements waiting for a batch: it goes after them, with them) has them
    # written from here at the loop's next turn instead, with the other checkpoints of that moment in one
    # round trip, and then skips its own; one that waits longer than it should (behind a batch, or in one
    # behind a statement stuck on a lock) has them written from here meanwhile. Either way a process killed
    # while the settlement waits has the call billed from them by the reaper, not blind at its bound.
    if yielding.settling_soon():
        slow = asyncio.get_running_loop().call_later(_SETTLEMENT_SLOW_SECONDS, tracker.final_soon, ending.result)
    else:
        slow = None
        tracker.final_soon(ending.result)
    try:
        if settle_after is not None:  # the reply's last steps first (a slow reader: the timer above covers it)
            await asyncio.shield(settle_after)
        return await yielding.settle_later(_ended_then(record), admission, ending)
    except Exception as exc:
        # The reader has its answer; the write-ahead record still holds the call, and the reaper bills it
        # once it is older than CALLS_INFLIGHT_MAX_AGE_SECONDS. The database gone is one line per call, not
        # a traceback each (an outage would bury the log); anything else is a bug and keeps its traceback.
        if is_unavailable(exc):
            log.warning("settling an answered call failed (database unavailable: %s); left to the reaper", exc)
        else:
            log.exception("settling an answered call failed; its in-flight record is left to the reaper")
        return None
    finally:
        if slow is not None:
            slow.cancel()


_SETTLEMENT_SLOW_SECONDS = 0.1  # several times a settlement's usual wait, even in a busy process


def _ended_then(record: Record) -> Record:
    """The record step of an answered call, after its exact figures went on its in-flight record."""

    def step(admission: Admission, ending: Ending) -> Any:
        inflight.ended_sync(admission, ending.result)
        return record(admission, ending)

    return step


# --- stream ---------------------------------------------------------------------------------


async def stream(
    *,
    admission: Admission,
    spec: CallSpec,
    raw_events: bool = False,
    record: Record | None = None,
    on_error: OnError | None = None,
    on_detach: OnDetach | None = None,
    settles_as: inflight.SettlesAs | None = None,
    reply_first: bool = False,
) -> AsyncIterator[StreamEvent | Completed | Failed]:
    """The gateway's stream events, then one Completed once recorded.

    Errors before any output: raised after the hold is given back, or, with `on_error`, recorded by
    it and yielded as Failed. A reader that stops iterating leaves the call running to its end;
    `on_detach(admission, seen_text)` then runs at once (e.g. to show "stopped" before the bill lands).
    `settles_as` as for `complete`. `reply_first`: the Completed comes as soon as upstream's stream has
    ended (how it ended, not yet the bill), with the bookkeeping still running in `Completed.settling`,
    for a caller whose last frame does not carry the bill: its body need not wait for the settlement."""
    record = observe.recording(record or settle_ending)
    pump = _Pump(admission, spec, raw_events, record, on_error, on_detach, settles_as, reply_first)
    pump.start()
    try:
        while True:
            item = await pump.queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if isinstance(item, Completed | Failed):
                return
    finally:
        pump.detach()


class _Pump:
    """Reads one upstream stream into a queue, in its own task, and records its ending."""

    def __init__(
        self,
        admission: Admission,
        spec: CallSpec,
        raw_events: bool,
        record: Record,
        on_error: OnError | None,
        on_detach: OnDetach | None = None,
        settles_as: inflight.SettlesAs | None = None,
        reply_first: bool = False,
    ) -> None:
        self.admission, self.spec, self.raw_events = admission, spec, raw_events
        self.record, self.on_error, self.on_detach = record, on_error, on_detach
        self.reply_first = reply_first
        self.finished = False
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.detached_at: float | None = None
        self.seen: list[str] = []
        self.task: asyncio.Task[None] | None = None
        self.tracker = inflight.for_call(admission=admission, streamed=True, settles_as=settles_as)  # write-ahead

    def start(self) -> None:
        self.task = _keep(asyncio.ensure_future(self._run()))

    def detach(self) -> None:
        if self.detached_at is not None:
            return
        self.detached_at = time.monotonic()
        if self.on_detach is not None and not self.finished:
            _keep(asyncio.ensure_future(_in_db(self.on_detach, self.admission, "".join(self.seen))))

    async def _run(self) -> None:
        try:
            await self._read()
        except asyncio.CancelledError:  # the process is shutting down: bill the most it can have cost
            if self.finished:  # unless its ending is being recorded: that lands, or its record goes to the reaper
                raise
            await self.tracker.landed()
            await _in_db(self.record, self.admission, Ending(_bound_result(self.admission, self.spec), detached=True))
            raise
        except _DrainTimeout:
            await self.tracker.landed()
            ending = Ending(_bound_result(self.admission, self.spec), detached=True, seen_text="".join(self.seen))
            await _in_db(self.record, self.admission, ending)
        except BaseException as exc:
            await self.tracker.landed()
            recorded = await _in_db(observe.failing(self.on_error or settle_failure), self.admission, exc)
            self.queue.put_nowait(Failed(exc, recorded) if self.on_error else exc)

    async def _read(self) -> None:
        events = gateway.astream(**_params(self.admission, self.spec), raw_events=self.raw_events)
        tracker = self.tracker
        try:
            async for event in events:
                if isinstance(event, StreamEnd | StreamTruncated):
                    await self._finish(event)
                    return
                if isinstance(event, TextDelta):
                    tracker.delta(event.text)
                elif isinstance(event, StreamStart):
                    tracker.first_text(message_id=event.message_id, request_id=event.request_id, model=event.model,
                                       input_usage=event.usage)  # fmt: skip
                if self.detached_at is None:
                    if isinstance(event, TextDelta):
                        self.seen.append(event.text)
                    self.queue.put_nowait(event)
                elif time.monotonic() - self.detached_at > settings.STREAM_DRAIN_SECONDS:
                    raise _DrainTimeout
        finally:
            await events.aclose()

    async def _finish(self, event: StreamEnd | StreamTruncated) -> None:
        self.finished = True
        truncated = isinstance(event, StreamTruncated)
        result = event.partial_result if isinstance(event, StreamTruncated) else event.result
        ending = Ending(
            result,
            error=event.error if isinstance(event, StreamTruncated) else None,
            detached=self.detached_at is not None,
            seen_text="".join(self.seen),
        )
        truncated_by = ending.error if truncated else None
        if self.reply_first:  # the reader's last frames need only how it ended: its body ends before the bill
            self.queue.put_nowait(Completed(self.admission, result, None, truncated_by, settling=self.task))
        await self.tracker.landed()
        if self.reply_first and not truncated:  # upstream's exact figures: settled as an answered call is
            await _settle_answered(self.admission, self.tracker, self.record, ending)
            return
        entry = await _in_db(_ended_then(self.record), self.admission, ending)
        if not self.reply_first:
            self.queue.put_nowait(Completed(self.admission, result, entry, truncated_by))


def _keep(task: asyncio.Task[Any]) -> asyncio.Task[Any]:
    """Hold a reference to a task nobody awaits until it is done (the loop keeps only weak ones)."""
    _running.add(task)
    task.add_done_callback(_running.discard)
    return task


class _DrainTimeout(Exception):
    pass
