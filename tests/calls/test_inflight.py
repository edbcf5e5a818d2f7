"""The write-ahead record of calls in flight and its reaper (claudeapp/calls/inflight.py), on real
Redis and Postgres: an orphan is billed once, a call its process billed before dying is not billed
again, a stream that never started only gives its hold back, a live process's call is left alone,
and budgets.reap_stale leaves a hold a record still covers to the reaper."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from django.utils import timezone

from billing import budgets, redisconn
from billing.costs import Usage
from billing.models import Budget, LedgerEntry, Reservation
from claudeapp.accounts.principals import Principal
from claudeapp.calls import inflight, queued
from claudeapp.requestlog import buffer
from claudeapp.requestlog.models import RequestLog

MODEL = "claude-haiku-4-5"
DEAD = "gone-host:4242:deadbeef"  # a process whose heartbeat key never existed


def start(person: Principal, *, streamed: bool, input_tokens: int = 400, max_tokens: int = 1000, **fields: str) -> str:
    """A record as the pipeline writes it (a hold on every covering budget), then the process dies."""
    reservation = budgets.reserve(principal=person, model_id=MODEL, input_tokens=input_tokens, max_tokens=max_tokens)
    call_id = inflight.open_sync(
        principal=person, reservation=reservation, model_id=MODEL, input_tokens=input_tokens,
        max_tokens=max_tokens, kind="message",
    )  # fmt: skip
    assert call_id is not None
    update = {"streamed": "1" if streamed else "0", "proc": DEAD, **fields}
    redisconn.client().hset(inflight.record_key(call_id), mapping=update)
    return call_id


def streamed_fields(*, message_id: str = "msg_01", request_id: str = "req_01", out: int = 57) -> dict[str, str]:
    usage = {"input_tokens": 321, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    return {"msg": message_id, "rid": request_id, "ek": f"upstream:{message_id}", "usage": json.dumps(usage),
            "out": str(out), "model_used": MODEL}  # fmt: skip


def test_an_orphaned_stream_is_billed_once_for_its_input_and_delivered_output(person, budget):
    call_id = start(person, streamed=True, **streamed_fields())

    first = inflight.reap()
    second = inflight.reap()  # the next beat finds nothing left

    assert (first.billed, second.billed, second.already) == (1, 0, 0)
    entry = LedgerEntry.objects.get()
    assert (entry.event_key, entry.input_tokens, entry.output_tokens) == ("upstream:msg_01", 321, 57)
    assert (entry.upstream_request_id, entry.upstream_message_id) == ("req_01", "msg_01")
    budget.refresh_from_db()
    assert budget.reserved_micros == 0 and budget.spent_micros == entry.cost_micros > 0
    assert not Reservation.objects.exists()
    assert inflight.records() == [] and not redisconn.client().exists(inflight.record_key(call_id))
    buffer.flush()
    row = RequestLog.objects.get()
    assert (row.status, row.error_type, row.cost_micros, row.output_tokens) == (
        "interrupted", "process_died", entry.cost_micros, 57,
    )  # fmt: skip


def test_a_call_its_process_billed_before_dying_is_not_billed_again(person, budget):
    # The chat surface settles under its own key (message:...), then the process dies before the delete.
    start(person, streamed=True, **streamed_fields(request_id="req_settled"))
    held = Reservation.objects.get()
    budgets.settle(reservation=held, usage=Usage(input_tokens=321, output_tokens=90), event_key="message:answer-1",
                   kind="message", subject="answer-1", upstream_request_id="req_settled")  # fmt: skip

    report = inflight.reap()

    assert (report.billed, report.already) == (0, 1)
    assert list(LedgerEntry.objects.values_list("event_key", flat=True)) == ["message:answer-1"]
    budget.refresh_from_db()
    assert budget.reserved_micros == 0
    assert inflight.records() == []


def test_the_same_event_key_is_never_billed_twice_even_without_a_request_id(person, budget):
    # A job's worker checkpointed its key, billed it, and died before the delete.
    start(person, streamed=False, ek="job:7", rid="", final=json.dumps({"input_tokens": 10, "output_tokens": 5}))
    budgets.settle(reservation=Reservation.objects.get(), usage=Usage(input_tokens=10, output_tokens=5),
                   event_key="job:7", kind="job", subject="7")  # fmt: skip

    inflight.reap()

    assert LedgerEntry.objects.count() == 1
    assert Budget.objects.get(pk=budget.pk).reserved_micros == 0


def test_a_stream_that_never_reached_its_first_text_only_gives_the_hold_back(person, budget):
    start(person, streamed=True)

    report = inflight.reap()

    assert (report.released, report.billed) == (1, 0)
    assert not LedgerEntry.objects.exists() and not Reservation.objects.exists()
    budget.refresh_from_db()
    assert (budget.reserved_micros, budget.spent_micros) == (0, 0)
    assert inflight.records() == []


def test_a_non_streamed_call_that_never_answered_is_billed_its_bound(person, budget):
    start(person, streamed=False, input_tokens=400, max_tokens=64)

    inflight.reap()

    entry = LedgerEntry.objects.get()
    assert (entry.input_tokens, entry.output_tokens) == (400, 64)  # the most upstream can have charged
    assert entry.event_key.startswith("interrupted:")
    assert Budget.objects.get(pk=budget.pk).reserved_micros == 0


def test_a_live_process_s_record_is_left_alone(person, budget):
    call_id = start(person, streamed=True, **streamed_fields(), proc=inflight.process_id())
    inflight.beat()

    report = inflight.reap()

    assert (report.live, report.billed) == (1, 0)
    assert not LedgerEntry.objects.exists() and Reservation.objects.count() == 1
    assert [r["id"] for r in inflight.records()] == [call_id]


def test_a_live_process_s_record_older_than_the_cap_is_reaped(person, budget, settings):
    start(person, streamed=True, **streamed_fields(), proc=inflight.process_id())
    inflight.beat()
    settings.CALLS_INFLIGHT_MAX_AGE_SECONDS = 0

    assert inflight.reap().billed == 1


def test_a_hold_whose_orphan_was_released_early_is_still_billed(person, budget):
    # budgets.reap_stale (or a job's next attempt) gave the hold back first: the spend is still added.
    start(person, streamed=True, **streamed_fields())
    budgets.release(reservation=Reservation.objects.get())

    inflight.reap()

    budget.refresh_from_db()
    entry = LedgerEntry.objects.get()
    assert budget.reserved_micros == 0 and budget.spent_micros == entry.cost_micros


@pytest.mark.parametrize("landed", [False, True], ids=["hold-never-landed", "hold-landed"])
def test_a_record_written_while_its_hold_was_taken_bills_only_a_hold_that_landed(person, budget, landed):
    """Admission writes a stateless call's record while it takes the call's hold (calls/admission.py), naming
    it by an id drawn ahead. A process killed before the hold landed (or whose hold a budget refused) leaves
    a record naming a hold with no row: its call never reached upstream, nothing is billed. One whose hold
    landed is billed as before (a non-streamed call that never answered: its bound)."""
    reservation = budgets.ready(principal=person, model_id=MODEL, input_tokens=400, max_tokens=64)
    call_id = inflight.open_sync(
        principal=person, reservation=reservation, model_id=MODEL, input_tokens=400, max_tokens=64, kind="message",
    )  # fmt: skip
    redisconn.client().hset(inflight.record_key(call_id), mapping={"streamed": "0", "proc": DEAD})
    assert redisconn.client().hget(inflight.record_key(call_id), "unheld") == b"1"
    if landed:
        budgets.take(reservation=reservation, principal=person)

    report = inflight.reap()

    assert (report.billed, report.released) == ((1, 0) if landed else (0, 1))
    budget.refresh_from_db()
    assert budget.reserved_micros == 0 and not Reservation.objects.exists() and inflight.records() == []
    if landed:
        entry = LedgerEntry.objects.get()
        assert (entry.input_tokens, entry.output_tokens) == (400, 64)
        assert budget.spent_micros == entry.cost_micros > 0
    else:
        assert not LedgerEntry.objects.exists() and budget.spent_micros == 0


def test_reap_stale_leaves_a_hold_a_record_covers_to_the_reaper(person, budget):
    from claudeapp.calls import tasks  # registers the records with reap_stale, as in every worker

    assert inflight.live_holds in budgets._hold_keepers and tasks.reap_interrupted
    start(person, streamed=True, **streamed_fields())
    covered = Reservation.objects.get()
    budgets.reserve(principal=person, model_id=MODEL, input_tokens=10, max_tokens=10)  # its process died unrecorded
    Reservation.objects.update(created_at=timezone.now() - dt.timedelta(hours=2))

    released = budgets.reap_stale(older_than=dt.timedelta(hours=1))

    assert released == 1
    assert list(Reservation.objects.values_list("pk", flat=True)) == [covered.pk]
    assert inflight.reap().billed == 1
    assert Budget.objects.get(pk=budget.pk).reserved_micros == 0


def test_a_job_attempt_s_record_lives_from_hold_to_settlement(person, budget, django_capture_on_commit_callbacks):
    from claudeapp.claude.results import GatewayResult

    payload = {"model": MODEL, "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
    held = queued.hold(principal=person, model_id=MODEL, payload=payload, batch=False, hold_for=dt.timedelta(minutes=5))
    (record,) = inflight.records()
    assert (record["kind"], record["streamed"], record["res"]) == ("job", "0", str(held.pk))
    result = GatewayResult(
        model_requested=MODEL, model_used=MODEL, attempts=[], fallback_reason=None, request_id="req_job",
        message_id="msg_job", text="ok", content=[], stop_reason="end_turn", stop_sequence=None,
        usage={"input_tokens": 9, "output_tokens": 2}, latency_ms=1.0,
    )  # fmt: skip

    with django_capture_on_commit_callbacks(execute=True):  # the record goes once the bill is durable
        queued.settle(reservation=held, payload=payload, result=result, event_key="job:1", kind="job", subject="1")

    assert inflight.records() == []
    assert LedgerEntry.objects.get().event_key == "job:1"


def test_an_attempt_s_hold_and_its_note_on_the_job_row_are_one_transaction(person, budget):
    """A worker killed between taking the hold and noting it on the job row left a hold the sweeper
    could not see (tests/jobs/test_leases.py caught one under load): both land, or neither does."""
    payload = {"model": MODEL, "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}

    def killed_before_the_note_landed(reservation: Reservation) -> None:
        assert reservation.pk is not None and Budget.objects.get(pk=budget.pk).reserved_micros > 0
        raise SystemExit("kill -9")  # what the process's death does to an open transaction: no commit

    with pytest.raises(SystemExit):
        queued.hold(principal=person, model_id=MODEL, payload=payload, batch=False,
                    hold_for=dt.timedelta(minutes=5), note=killed_before_the_note_landed)  # fmt: skip

    assert not Reservation.objects.exists() and Budget.objects.get(pk=budget.pk).reserved_micros == 0
    assert inflight.records() == []  # the record follows the hold, never a hold that is not there


def test_a_batch_request_s_hold_writes_no_record(person, budget):
    payload = {"model": MODEL, "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
    queued.hold(principal=person, model_id=MODEL, payload=payload, batch=True, hold_for=dt.timedelta(hours=1))

    assert inflight.records() == []


def _answered_admission(person, tag: str, *, output_tokens: int):
    """A held admission (no write-ahead record yet) and the answer upstream gave it: rid req_TAG, msg_TAG."""
    from types import SimpleNamespace

    from claudeapp.claude.results import GatewayResult

    reservation = budgets.reserve(principal=person, model_id=MODEL, input_tokens=10, max_tokens=10)
    admission = SimpleNamespace(principal=person, reservation=reservation, decision=SimpleNamespace(model_id=MODEL),
                                input_tokens=10, max_tokens=10, inflight=None)  # fmt: skip
    result = GatewayResult(
        model_requested=MODEL, model_used=MODEL, attempts=[], fallback_reason=None, request_id=f"req_{tag}",
        message_id=f"msg_{tag}", text="", content=[], stop_reason="end_turn", stop_sequence=None,
        usage={"input_tokens": 9, "output_tokens": output_tokens}, latency_ms=1.0,
    )  # fmt: skip
    return admission, result


def test_an_answer_s_end_checkpoint_lands_on_a_record_whose_start_write_was_slow(person, budget, monkeypatch):
    """The end checkpoint (the request id that keeps a settled call from being billed twice) is written
    after the record's start write landed: a checkpoint of a record not written yet would be dropped."""
    import asyncio

    from claudeapp.core.redisconn import aclose

    admission, result = _answered_admission(person, "fast", output_tokens=2)

    write_start = inflight._astart

    async def slow_start(fields: dict[str, str]) -> None:  # a start write that waited for a pool connection
        await asyncio.sleep(0.05)
        await write_start(fields)

    monkeypatch.setattr(inflight, "_astart", slow_start)

    async def answer_at_once() -> None:
        tracker = inflight.open_async(admission=admission, streamed=False)
        await tracker.landed()  # what run.py awaits before it hands the ending to the settling thread
        await aclose()

    asyncio.run(answer_at_once())
    inflight.ended_sync(admission, result)  # the settling thread's first step

    (record,) = inflight.records()
    assert (record["rid"], record["ek"], json.loads(record["final"])["output_tokens"]) == (
        "req_fast", "upstream:msg_fast", 2,
    )  # fmt: skip


@pytest.mark.parametrize("early", [True, False], ids=["final-soon-landed", "no-early-write"])
def test_the_settling_thread_writes_the_exact_figures_unless_final_soon_put_them_there(person, budget, early):
    """Under load an answered call's settlement waits past 0.1 s, so `final_soon` writes upstream's figures from
    the loop first; the settling thread's own write (a round trip on a database thread) is then skipped. A
    write of its own marks nothing: the thread writes them."""
    import asyncio

    from claudeapp.core.redisconn import aclose

    admission, result = _answered_admission(person, "early", output_tokens=3)

    async def answered() -> inflight.Tracker:
        tracker = inflight.open_async(admission=admission, streamed=False)
        await tracker.landed()
        if early:
            tracker.final_soon(result)
            for _ in range(200):
                if tracker.final_landed:
                    break
                await asyncio.sleep(0.01)
        await aclose()
        return tracker

    tracker = asyncio.run(answered())
    assert tracker.final_landed is early
    key = inflight.record_key(tracker.call_id)
    redisconn.client().hset(key, "final", "{}")  # a later write would put the figures back: see if one comes
    inflight.ended_sync(admission, result)

    (record,) = inflight.records()
    assert json.loads(record["final"]) == ({} if early else {"input_tokens": 9, "output_tokens": 3})
    assert (record["rid"], record["ek"]) == ("req_early", "upstream:msg_early")


def test_a_process_is_dead_only_when_two_looks_apart_miss_its_heartbeat(person, budget, settings):
    """A process that outlived a Redis outage longer than its heartbeat's TTL has no heartbeat key until
    it beats again: the first look only marks it; a beat since clears the mark; a second look past
    CALLS_ORPHAN_CONFIRM_SECONDS with no beat bills its calls."""
    settings.CALLS_ORPHAN_CONFIRM_SECONDS = 60
    start(person, streamed=True, **streamed_fields())
    client = redisconn.client()

    first = inflight.reap()
    assert (first.billed, first.live) == (0, 1) and not LedgerEntry.objects.exists()
    assert client.exists(inflight.suspect_key(DEAD))

    inflight.beat(DEAD)  # the process beats again once Redis is back: it was alive all along
    assert inflight.reap().live == 1
    assert not client.exists(inflight.suspect_key(DEAD))
    client.delete(inflight.alive_key(DEAD))  # now it dies for real

    assert inflight.reap().billed == 0  # first look after its death: marked, not billed
    client.set(inflight.suspect_key(DEAD), f"{time.time() - 61:.3f}")  # the second look, a minute on
    assert inflight.reap().billed == 1
    assert LedgerEntry.objects.get().event_key == "upstream:msg_01"
