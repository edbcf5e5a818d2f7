"""The write-ahead record of upstream calls in flight, and the reaper that bills the orphans.

A process killed with `kill -9` mid-call (a web process mid-stream, a worker mid-job) has been
charged upstream but never reaches settlement. So every billed call leaves a record in Redis when
its upstream call starts, one hash per call:

    start        principal, reserved model and price version, hold (reservation id, budget ids,
                 amount), input bound, max_tokens, surface, request id, owning process
    checkpoint   message and request id, model used, message_start's input usage (exact), output
                 delivered so far: at the stream's first text, then at most every
                 CALLS_INFLIGHT_CHECKPOINT_SECONDS, and at the end (the final usage and event key)
    settlement   deletes it in the Redis pipeline settlement already sends (no round trip of its own)

Each process keeps a heartbeat key (TTL CALLS_HEARTBEAT_TTL_SECONDS, refreshed by a daemon thread).
The reaper (`reap`, a beat task every CALLS_REAPER_INTERVAL_SECONDS) settles each record whose
process's heartbeat is gone, or that is older than CALLS_INFLIGHT_MAX_AGE_SECONDS, exactly once:

- a call already in the ledger (its upstream request id is there, or its event key is): nothing more
  is billed, the hold goes back if it is still there;
- a record written while its hold was being taken (a stateless call's, calls/admission.py) that no
  upstream byte reached, whose hold has no row: the hold never landed (refused, or the process died
  first) or was given back: nothing is billed;
- a stream that never reached its first text (no upstream byte seen): the hold goes back;
- otherwise the input (exact from message_start, else the bound held) and the output delivered at
  the last checkpoint (a non-streamed call that never answered: max_tokens, the most upstream can
  have produced) at the model's price, under the record's event key through budgets.settle (so a
  second reaper, or the process's own settlement, can never bill it twice); the rest of the hold is
  released and a request-log row says `interrupted`.

Cost on the hot path: the start write (one pipelined round trip, sent from a task of its own on the
async path: the relay never waits for it), a checkpoint script at most once a second of stream and
one at the end (both fire-and-forget), and nothing for the delete. Redis unreachable: the call goes
on unrecorded (logged), as the rate limits fail open.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings

from billing import redisconn
from billing.models import Reservation
from claudeapp.accounts.principals import Principal
from claudeapp.claude.results import GatewayResult, text_bound
from claudeapp.core import logcontext
from claudeapp.core.perloop import PerLoop

log = logging.getLogger(__name__)

# Update a record only while it exists: a checkpoint that lands after settlement's delete must not
# bring the record back (it would then be reaped as an orphan).
_CHECKPOINT_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], unpack(ARGV))
  return 1
end
return 0
"""
_DONE_LUA = """
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""


class _Script:
    """A Lua script for the sync client (billing.redisconn.Batch takes it) and the async one."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._sync: Any = None

    @property
    def sha(self) -> str:
        return self._script().sha

    def _script(self) -> Any:
        if self._sync is None:
            self._sync = redisconn.client().register_script(self.source)
        return self._sync

    def __call__(self, *, keys: list[str], args: list[object]) -> Any:
        return self._script()(keys=keys, args=args)

    async def acall(self, *, keys: list[str], args: list[object]) -> Any:
        from claudeapp.core.redisconn import aclient

        client = aclient()
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)


_checkpoint = _Script(_CHECKPOINT_LUA)
_done = _Script(_DONE_LUA)


def _prefix() -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:calls"


def index_key() -> str:
    return f"{_prefix()}:inflight"


def record_key(call_id: str) -> str:
    return f"{_prefix()}:inflight:{call_id}"


def alive_key(process: str) -> str:
    return f"{_prefix()}:alive:{process}"


# --- this process and its heartbeat -----------------------------------------------------------

_state: dict[str, Any] = {"pid": None, "id": "", "thread": None}
_lock = threading.Lock()


def process_id() -> str:
    """This process's id (host, pid and a random part: a pid reused after a crash is another process);
    starts its heartbeat thread the first time in each process (a forked child gets its own)."""
    if _state["pid"] != os.getpid():
        with _lock:
            if _state["pid"] != os.getpid():
                _state["id"] = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
                _state["pid"] = os.getpid()
                _state["thread"] = threading.Thread(target=_beat_forever, name="calls-heartbeat", daemon=True)
                _state["thread"].start()
    return _state["id"]


def beat(process: str | None = None) -> None:
    """Say this process is alive for the next CALLS_HEARTBEAT_TTL_SECONDS."""
    ttl = max(1, round(settings.CALLS_HEARTBEAT_TTL_SECONDS))
    redisconn.client().set(alive_key(process or process_id()), str(time.time()), ex=ttl)


def _beat_forever() -> None:
    process = _state["id"]
    while _state["id"] == process:
        try:
            beat(process)
        except Exception as exc:  # Redis away: the records are away too, or will be reaped late
            log.warning("calls: in-flight heartbeat failed (%s)", exc)
        time.sleep(settings.CALLS_HEARTBEAT_SECONDS)


# --- the record -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettlesAs:
    """The ledger identity a caller's record step bills its call under (a conversation turn bills its
    answer: `message:<id>`). On the in-flight record, the reaper bills an orphan under the same key, so
    the call is billed once whoever gets there, and the cost is found under its answer."""

    event_key: str
    subject: str


Interrupted = Callable[[Mapping[str, str], Any], None]
_when_interrupted: list[Interrupted] = []


def when_interrupted(hook: Interrupted) -> None:
    """Run `hook(record, entry)` for every orphan the reaper settles: `entry` is the LedgerEntry it
    billed, or None when the call never reached upstream's first text (its hold went back). For the
    owner of what the call was for (a turn's answer) to leave it in a final state: the package that
    owns it registers, as calls must not import it."""
    if hook not in _when_interrupted:
        _when_interrupted.append(hook)


def _tell(record: Mapping[str, str], entry: Any) -> None:
    for hook in list(_when_interrupted):
        try:
            hook(record, entry)
        except Exception:  # the bill is in: a hook failing must not make the reaper settle it again
            log.exception("calls: an interrupted-call hook failed for %s", record.get("id"))


@dataclass
class Tracker:
    """One call's record, as its process sees it (attached to its Admission or Reservation)."""

    call_id: str
    streamed: bool
    max_tokens: int
    output: int = 0  # the output bound delivered so far
    last_checkpoint: float = 0.0
    started: asyncio.Future[Any] | None = None  # the async start write (awaited before settlement)
    keyed: bool = False  # the record names the event key its caller settles under (a turn's answer)
    final_landed: bool = False  # upstream's exact figures are on the record already (`final_soon` landed)

    # stream progress (async path)

    def first_text(self, *, message_id: str | None, request_id: str | None, model: str,
                   input_usage: Mapping[str, int] | None) -> None:  # fmt: skip
        fields = {"ek": f"upstream:{message_id}"} if message_id and not self.keyed else {}
        fields.update(msg=message_id or "", rid=request_id or "", model_used=model)
        if input_usage:
            fields["usage"] = json.dumps(dict(input_usage))
        self._fire(fields)

    def delta(self, text: str) -> None:
        """A text delta went out: count it, checkpoint at most every CALLS_INFLIGHT_CHECKPOINT_SECONDS."""
        self.output += text_bound(text)
        now = time.monotonic()
        if now - self.last_checkpoint >= settings.CALLS_INFLIGHT_CHECKPOINT_SECONDS:
            self._fire({"out": str(self.output)})

    def _fire(self, fields: dict[str, str], *, soon: bool = False) -> None:
        self.last_checkpoint = time.monotonic()
        _loop_checkpoints().add(self, fields, soon=soon)

    async def landed(self) -> None:
        """Wait for the start write (so settlement's delete comes after it); usually long done."""
        if self.started is not None:
            await asyncio.shield(self.started)

    def final_soon(self, result: GatewayResult) -> None:
        """Upstream's exact figures on the record at the loop's next turn, with the other checkpoints of that
        moment (one pipelined round trip): for an answered call whose settlement is slow to land."""
        if self.call_id:
            self._fire(_final_fields(result, keyed=self.keyed), soon=True)


class _Checkpoints:
    """The stream checkpoints of one event loop, written together: what the streams of a moment have
    to say goes out as one pipelined round trip a few milliseconds later, instead of a task and a
    round trip per stream (2,000 open streams checkpoint about 2,000 times a second; one at a time
    they held the async Redis pool's connections while a busy loop read their replies late, and ran
    it dry). A stream's newer fields replace its older ones still waiting. A record whose async start
    write has not landed waits for it (a checkpoint never creates a record)."""

    def __init__(self) -> None:
        self.waiting: dict[str, tuple[Tracker, dict[str, str]]] = {}
        self.writer: asyncio.Task[None] | None = None
        self.soon = False  # something waiting is owed at the loop's next turn, not after the gather

    def add(self, tracker: Tracker, fields: dict[str, str], *, soon: bool = False) -> None:
        """`soon`: written at the loop's next turn (an answered call's end), with whatever else is waiting
        then; else within CHECKPOINT_GATHER_SECONDS (a stream's progress)."""
        queued = self.waiting.get(tracker.call_id)
        if queued is None:
            self.waiting[tracker.call_id] = (tracker, dict(fields))
        else:
            queued[1].update(fields)
        self.soon = self.soon or soon
        if self.writer is None:
            self.writer = asyncio.ensure_future(self._write())

    async def _write(self) -> None:
        try:
            while self.waiting:
                # Let this moment's other streams join, unless an answered call's end is owed.
                await asyncio.sleep(0 if self.soon else CHECKPOINT_GATHER_SECONDS)
                self.soon = False
                ready = {cid: q for cid, q in self.waiting.items() if q[0].started is None or q[0].started.done()}
                for call_id in ready:
                    del self.waiting[call_id]
                if ready:
                    await _quietly(_write_checkpoints(list(ready.values())))
        finally:
            self.writer = None


CHECKPOINT_GATHER_SECONDS = 0.005
_loop_checkpoints = PerLoop(_Checkpoints).get


async def _write_checkpoints(queued: list[tuple[Tracker, dict[str, str]]]) -> None:
    from claudeapp.core.redisconn import aclient

    pipe = aclient().pipeline(transaction=False)
    calls = [([record_key(t.call_id)], [x for pair in fields.items() for x in pair]) for t, fields in queued]
    for keys, args in calls:
        pipe.evalsha(_checkpoint.sha, len(keys), *keys, *args)
    results = await pipe.execute(raise_on_error=False)
    for (tracker, fields), (keys, args), result in zip(queued, calls, results, strict=True):
        if isinstance(result, redis.exceptions.NoScriptError):  # Redis restarted or flushed: load and run
            result = await _checkpoint.acall(keys=keys, args=args)
        elif isinstance(result, Exception):
            raise result
        if result == 1 and "final" in fields:  # the settlement need not write them again
            tracker.final_landed = True


def _final_fields(result: GatewayResult, *, keyed: bool = False) -> dict[str, str]:
    fields = {"rid": result.request_id or "", "msg": result.message_id or "", "model_used": result.model_used,
              "final": json.dumps(dict(result.usage))}  # fmt: skip
    if result.message_id and not keyed:
        fields["ek"] = f"upstream:{result.message_id}"
    return fields


async def _quietly(write: Any) -> None:
    try:
        await write
    except Exception as exc:  # the record is a safety net: a call never fails for it
        log.warning("calls: in-flight record write failed (%s)", exc)


def _start_fields(
    *,
    call_id: str,
    principal: Principal,
    reservation: Reservation,
    model_id: str,
    input_tokens: int,
    max_tokens: int,
    streamed: bool,
    kind: str,
) -> dict[str, str]:
    ctx = logcontext.current()
    return {
        "id": call_id,
        "proc": process_id(),
        "at": f"{math.floor(time.time() * 1000) / 1000:.3f}",  # never ahead of the clock: records() reads <= now
        "pk": principal.kind,
        "pid": str(principal.id),
        "uid": "" if principal.user_id is None else str(principal.user_id),
        "model": model_id,
        "res": "" if reservation.pk is None else str(reservation.pk),
        "res_model": reservation.model_id,
        "price": str(reservation.price_version_id or ""),
        "amount": str(reservation.amount_micros or 0),
        "budgets": ",".join(map(str, reservation.budget_ids or [])),
        # Named before it is taken (admission takes it while this record goes to Redis): see _never_held.
        "unheld": "1" if reservation.pk is not None and reservation._state.adding else "",
        "in": str(input_tokens),
        "max": str(max_tokens),
        "streamed": "1" if streamed else "0",
        "kind": kind,
        "surface": ctx.surface or "",
        "req": ctx.request_id or "",
    }


def _start_pipe(pipe: Any, fields: dict[str, str]) -> None:
    key = record_key(fields["id"])
    pipe.hset(key, mapping=fields)
    # A record outlives every call by far; the expiry only collects one a lost delete left behind.
    pipe.expire(key, int(settings.CALLS_INFLIGHT_MAX_AGE_SECONDS) + 3600)
    pipe.zadd(index_key(), {fields["id"]: float(fields["at"])})


def open_async(*, admission: Any, streamed: bool, settles_as: SettlesAs | None = None) -> Tracker:
    """The async pipeline's start: the record is written from a task of its own (the upstream call
    does not wait for it); `Tracker.landed()` before settlement keeps the delete after it."""
    call_id = uuid.uuid4().hex
    fields = _start_fields(
        call_id=call_id, principal=admission.principal, reservation=admission.reservation,
        model_id=admission.decision.model_id, input_tokens=admission.input_tokens, max_tokens=admission.max_tokens,
        streamed=streamed, kind="message",
    )  # fmt: skip
    if settles_as is not None:
        fields.update(ek=settles_as.event_key, subject=settles_as.subject)
    tracker = Tracker(call_id=call_id, streamed=streamed, max_tokens=admission.max_tokens, keyed=settles_as is not None)
    tracker.last_checkpoint = time.monotonic()
    tracker.started = asyncio.ensure_future(_quietly(_astart(fields)))
    admission.inflight = tracker
    return tracker


async def _astart(fields: dict[str, str]) -> None:
    from claudeapp.core.redisconn import aclient

    pipe = aclient().pipeline(transaction=False)
    _start_pipe(pipe, fields)
    await pipe.execute()


def start_on(admission: Any, pipe: Any, *, streamed: bool) -> Callable[[list[Any] | None], None]:
    """The start of a call that follows at once (the stateless surfaces), queued on the pipeline admission
    sends anyway (its take of the org's upstream room, billing/upstream.py): no round trip of its own.
    Returns what to call with the writes' replies (None: Redis unreachable); it attaches the call's Tracker
    to `admission`, or None when the record could not be written (the call goes on unrecorded). A process
    killed between here and the upstream request has its call billed at the hold's bound, like a worker's
    job attempt (`open_sync`)."""
    call_id = uuid.uuid4().hex
    fields = _start_fields(
        call_id=call_id, principal=admission.principal, reservation=admission.reservation,
        model_id=admission.decision.model_id, input_tokens=admission.input_tokens,
        max_tokens=admission.max_tokens, streamed=streamed, kind="message",
    )  # fmt: skip
    _start_pipe(pipe, fields)

    def replied(replies: list[Any] | None) -> None:
        failed = [r for r in replies if isinstance(r, Exception)] if replies is not None else ["Redis unreachable"]
        if failed:
            log.warning("calls: could not write the in-flight record (%s); the call goes on unrecorded", failed[0])
            admission.inflight = None
            return
        admission.inflight = Tracker(
            call_id=call_id, streamed=streamed, max_tokens=admission.max_tokens, last_checkpoint=time.monotonic()
        )

    return replied


def for_call(*, admission: Any, streamed: bool, settles_as: SettlesAs | None = None) -> Tracker:
    """The call's record: the one admission wrote (when it did: one record per call, never a second
    one beside it), else written now from a task, naming `settles_as` when the caller gives it."""
    tracker = getattr(admission, "inflight", None)
    if tracker is not None:
        return tracker
    return open_async(admission=admission, streamed=streamed, settles_as=settles_as)


def ended_sync(admission: Any, result: GatewayResult) -> None:
    """The upstream call's exact figures on its record, written by the settling thread before the
    ledger (a process that dies between the ledger and the record's delete is then seen as billed).
    An async start must have landed first (`Tracker.landed()`): a checkpoint never creates a record.
    Nothing to write when `final_soon` put them there already (a settlement that waited: usual under load)."""
    tracker = getattr(admission, "inflight", None)
    if tracker is None or not tracker.call_id or tracker.final_landed:
        return
    checkpoint_sync(tracker.call_id, **_final_fields(result, keyed=tracker.keyed))


def open_sync(
    *,
    principal: Principal,
    reservation: Reservation,
    model_id: str,
    input_tokens: int,
    max_tokens: int,
    kind: str,
    streamed: bool = False,
) -> str | None:
    """The sync start (a worker's job attempt): written before the call, one round trip. The call id,
    or None when Redis could not take it."""
    call_id = uuid.uuid4().hex
    fields = _start_fields(
        call_id=call_id, principal=principal, reservation=reservation, model_id=model_id,
        input_tokens=input_tokens, max_tokens=max_tokens, streamed=streamed, kind=kind,
    )  # fmt: skip
    try:
        pipe = redisconn.client().pipeline(transaction=False)
        _start_pipe(pipe, fields)
        pipe.execute()
    except redisconn.UNAVAILABLE as exc:
        log.warning("calls: could not write the in-flight record (%s); the call goes on unrecorded", exc)
        return None
    return call_id


def checkpoint_sync(call_id: str | None, **fields: str) -> None:
    """A sync checkpoint (a worker about to settle: the event key and request id it settles under)."""
    if not call_id:
        return
    try:
        _checkpoint(keys=[record_key(call_id)], args=[x for pair in fields.items() for x in pair])
    except redisconn.UNAVAILABLE as exc:
        log.warning("calls: could not checkpoint the in-flight record (%s)", exc)


def done(call_id: str | None, pipe: redisconn.Batch | None = None) -> None:
    """The call is settled (or abandoned): drop its record, queued on `pipe` when given."""
    if not call_id:
        return
    keys, args = [record_key(call_id), index_key()], [call_id]
    if pipe is not None:
        pipe.script(_done, keys=keys, args=args)
        return
    try:
        _done(keys=keys, args=args)
    except redisconn.UNAVAILABLE as exc:
        log.warning("calls: could not drop the in-flight record (%s); the reaper will find it billed", exc)


def call_id_of(admission: Any) -> str | None:
    tracker = getattr(admission, "inflight", None)
    return tracker.call_id if tracker is not None else None


# --- the reaper -------------------------------------------------------------------------------


@dataclass
class Reaped:
    billed: int = 0  # orphans billed now
    already: int = 0  # orphans their process had billed before dying
    released: int = 0  # orphans that never reached upstream's first byte
    live: int = 0  # records of live processes, left alone


def records(*, older_than: float = 0.0) -> list[dict[str, str]]:
    """Every record started more than `older_than` seconds ago (the reaper's view; tests read it too)."""
    client = redisconn.client()
    ids = [i.decode() for i in client.zrangebyscore(index_key(), "-inf", time.time() - older_than)]
    if not ids:
        return []
    pipe = client.pipeline(transaction=False)
    for call_id in ids:
        pipe.hgetall(record_key(call_id))
    found = []
    for call_id, raw in zip(ids, pipe.execute(), strict=True):
        if not raw:
            client.zrem(index_key(), call_id)  # its hash expired: nothing left to settle
            continue
        found.append({k.decode(): v.decode() for k, v in raw.items()})
    return found


def live_holds() -> set[int]:
    """Reservation ids still covered by a record (budgets.reap_stale leaves them to the reaper)."""
    return {int(r["res"]) for r in records() if r.get("res")}


def reap() -> Reaped:
    """Settle every orphaned record once (see the module docstring)."""
    report = Reaped()
    grace = settings.CALLS_HEARTBEAT_TTL_SECONDS  # a record younger than a heartbeat may precede its first beat
    found = records(older_than=grace)
    if not found:
        return report
    client = redisconn.client()
    procs = sorted({r.get("proc", "") for r in found})
    pipe = client.pipeline(transaction=False)
    for proc in procs:
        pipe.exists(alive_key(proc))
    beating = {proc for proc, up in zip(procs, pipe.execute(), strict=True) if up}
    dead = _confirmed_dead(client, [proc for proc in procs if proc not in beating], beating)
    oldest = time.time() - settings.CALLS_INFLIGHT_MAX_AGE_SECONDS
    for record in found:
        if record.get("proc") not in dead and float(record.get("at") or 0) > oldest:
            report.live += 1
            continue
        claim = f"{record_key(record['id'])}:reaping"
        if not client.set(claim, "1", nx=True, ex=300):
            continue  # another reaper has it
        try:
            _settle_orphan(record, report)
            done(record["id"])
        except Exception:
            log.exception("calls: could not settle interrupted call %s; will retry", record["id"])
        finally:
            client.delete(claim)
    if report.billed or report.already or report.released:
        log.warning(
            "calls: interrupted calls settled: %d billed, %d already billed, %d released",
            report.billed, report.already, report.released,
        )  # fmt: skip
    return report


def suspect_key(process: str) -> str:
    return f"{_prefix()}:suspect:{process}"


def _confirmed_dead(client: Any, missing: list[str], beating: set[str]) -> set[str]:
    """The processes whose heartbeat was missing on two looks at least CALLS_ORPHAN_CONFIRM_SECONDS apart.

    One look is not enough: a process that lived through a Redis outage longer than its heartbeat's TTL
    has no heartbeat key until its thread beats again (within CALLS_HEARTBEAT_SECONDS of Redis's return),
    and reaping its calls then would bill calls it goes on to settle itself (twice, where its settlement
    key differs from the record's: chat settles under its message). The first look leaves a mark; a
    heartbeat seen since clears it."""
    pipe = client.pipeline(transaction=False)
    for proc in beating:
        pipe.delete(suspect_key(proc))
    now, keep = time.time(), int(settings.CALLS_REAPER_INTERVAL_SECONDS * 3 + settings.CALLS_ORPHAN_CONFIRM_SECONDS)
    for proc in missing:
        pipe.set(suspect_key(proc), repr(now), nx=True, ex=max(keep, 1))  # repr: the exact float back
        pipe.get(suspect_key(proc))
    replies = pipe.execute()[len(beating) :]
    first_seen = [float(seen or now) for seen in replies[1::2]]
    confirm = settings.CALLS_ORPHAN_CONFIRM_SECONDS
    return {proc for proc, seen in zip(missing, first_seen, strict=True) if now - seen >= confirm}


def _reservation(record: Mapping[str, str]) -> Reservation:
    """The hold as the process held it (its row may be gone: settle then only adds the spend)."""
    reservation = Reservation(
        principal_kind=record["pk"], principal_id=int(record["pid"]),
        user_id=int(record["uid"]) if record.get("uid") else None, model_id=record["res_model"],
        price_version_id=int(record["price"]), amount_micros=int(record.get("amount") or 0),
        budget_ids=[int(b) for b in record.get("budgets", "").split(",") if b],
    )  # fmt: skip
    reservation.pk = int(record["res"]) if record.get("res") else None
    return reservation


def usage_of(record: Mapping[str, str]) -> dict[str, int]:
    """What the interrupted call consumed upstream, as far as its record tells."""
    if record.get("final"):
        return dict(json.loads(record["final"]))
    max_tokens = int(record.get("max") or 0)
    usage = json.loads(record["usage"]) if record.get("usage") else {"input_tokens": int(record.get("in") or 0)}
    # A stream: what was delivered (message_start reports one at least). No answer to a non-streamed
    # call: the most upstream can have produced.
    output = max(int(record.get("out") or 0), 1) if record.get("streamed") == "1" else max_tokens
    usage["output_tokens"] = min(output, max_tokens) if max_tokens else output
    return usage


def _never_held(record: Mapping[str, str], reservation: Reservation) -> bool:
    """A record written while its hold was being taken, that no upstream byte reached, whose hold has no row:
    the hold was refused or never landed (the process died first), or the process gave it back (a call that
    cost nothing). Its call never reached upstream, or cost nothing there: nothing to bill. (A row goes only
    with its settlement or its release; a record with upstream's figures is settled, once, as any other.)"""
    if record.get("unheld") != "1" or reservation.pk is None:
        return False
    if any(record.get(field) for field in ("msg", "rid", "final", "usage")):
        return False
    return not Reservation.objects.filter(pk=reservation.pk).exists()


def _settle_orphan(record: Mapping[str, str], report: Reaped) -> None:
    from billing import budgets
    from billing.models import LedgerEntry
    from claudeapp.calls import observe, settlement

    reservation = _reservation(record)
    rid, msg = record.get("rid", ""), record.get("msg", "")
    if rid and LedgerEntry.objects.filter(upstream_request_id=rid).exists():
        budgets.release(reservation=reservation)  # billed before the process died: a no-op if claimed
        report.already += 1
        return
    if _never_held(record, reservation):
        report.released += 1
        return
    if record.get("streamed") == "1" and not msg and not record.get("final"):
        budgets.release(reservation=reservation)  # the stream never reached its first text
        report.released += 1
        observe.interrupted(record=record, entry=None)
        _tell(record, None)
        return
    model_used = record.get("model_used") or record["model"]
    entry = budgets.settle(
        reservation=reservation,
        usage=settlement.usage_from_gateway(usage_of(record)),
        event_key=record.get("ek") or f"interrupted:{record['id']}",
        kind=record.get("kind") or "message",
        subject=(record.get("subject") or msg or record["id"])[:100],
        upstream_request_id=rid,
        upstream_message_id=msg,
        model_id=model_used,
    )
    report.billed += 1
    observe.interrupted(record=record, entry=entry)
    _tell(record, entry)
