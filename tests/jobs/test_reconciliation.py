"""Queued jobs and Message Batches: the ledger against what upstream charged.

The jobs half of the reconciliation matrix (the streamed surfaces are in tests/api/test_reconciliation.py).
Each cell runs one job, waits until it is terminal and no budget hold is left, and compares the sum of
the gateway's LedgerEntry rows with the sum of the emulator's own charges (`/_emulator/ledger`):

- EXACT (complete, 529 then fallback): upstream reported usage, so the ledger equals it to the token.
- BOUND: the attempt that broke is billed at a bound, then the job retries and succeeds exactly.
  A 200 whose JSON body was cut: upstream produced a whole message we never saw, billed at the local
  input bound and max_tokens, so input and output are both >= the charge. A stream cut mid-answer (the
  job's max_tokens is above CLAUDE_NONSTREAMING_MAX_TOKENS, so the worker streams internally):
  message_start's input is exact, the output is a bound >= the charge.
- NOTHING (a 400 before any message): no ledger line, and the emulator charged 0.

Batch jobs are billed per succeeded result at the batch price; errored and expired results charge nothing.
Queued jobs run on the session's real Celery worker; batch jobs are driven in-process through the beat
task's steps (submit, poll), as in test_batches.py.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from billing import costs, prices
from billing.models import Budget, LedgerEntry, Reservation
from claudeapp.jobs import batches, services, sweeper, upstream
from claudeapp.jobs.models import Job, MessageBatch
from tests.fixtures.contents import PDF, user_content, with_content
from tests.fixtures.reconcile import ledger_usage, totals
from tests.jobs.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "claude-haiku-5-5"
FALLBACK_FROM = "claude-sonnet-5-5"  # its chain falls back to haiku (seeded model map)
STREAMED_MAX_TOKENS = 5000  # above CLAUDE_NONSTREAMING_MAX_TOKENS (4096): the worker streams the call
TERMINAL = {"succeeded", "failed", "dead", "canceled"}


@dataclass(frozen=True)
class Ending:
    name: str
    marker: str  # emulator fault marker put in the prompt
    status: str  # the job's terminal status
    input_exact: bool  # ledger input == charge (else >=)
    output_exact: bool  # ledger output == charge (else >=)
    ledger_lines: int  # one per billed attempt: never a second line for the same tokens
    charge_endings: tuple[str, ...]  # the emulator's endings, in order
    model: str = MODEL
    streamed: bool = False  # max_tokens above the non-streaming ceiling


JOB_ENDINGS = {
    "complete": Ending("complete", "", "succeeded", True, True, 1, ("complete",)),
    "fallback": Ending(
        "fallback",
        f"[[fault:529@{FALLBACK_FROM}]]",
        "succeeded",
        True,
        True,
        1,
        ("refused", "complete"),
        model=FALLBACK_FROM,
    ),
    # Half the JSON body, then a drop: the attempt is billed at its bound, the retry answers in full.
    "body-cut": Ending("body-cut", "[[fault:stream-cut:1:1]]", "succeeded", False, False, 2, ("cut", "complete")),
    # A stream dropped after 3 chunks: message_start's input is exact, the output a bound.
    "stream-cut": Ending(
        "stream-cut", "[[fault:stream-cut:3:1]]", "succeeded", True, False, 2, ("cut", "complete"), streamed=True
    ),
    "refused-400": Ending("refused-400", "[[fault:400]]", "failed", True, True, 0, ("refused",)),
    # Partial output, then the fallback answers on the same attempt: the broken call is summed into the one line.
    "stream-cut-fallback": Ending(
        "stream-cut-fallback",
        f"[[fault:stream-cut:3@{FALLBACK_FROM}]]",
        "succeeded",
        True,
        False,
        1,
        ("cut", "complete"),
        model=FALLBACK_FROM,
        streamed=True,
    ),
    "body-cut-fallback": Ending(
        "body-cut-fallback",
        f"[[fault:stream-cut:1@{FALLBACK_FROM}]]",
        "succeeded",
        False,
        False,
        1,
        ("cut", "complete"),
        model=FALLBACK_FROM,
    ),
}
JOB_CONTENTS = ("text", "document", "image", "tools", "thinking")
BATCH_CONTENTS = ("text", "document", "image", "tools", "thinking")


def job_payload(content: str, marker: str, *, model: str = MODEL, streamed: bool = False) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "model": model,
        "max_tokens": STREAMED_MAX_TOKENS if streamed else 600,
        "messages": [{"role": "user", "content": user_content(content, marker)}],
    }
    return with_content(payload, content)


# --- reconciling -----------------------------------------------------------------------------


def settled(job_ids: list[Any], *, timeout: float = 45.0) -> list[Job]:
    """The jobs once all are terminal and no budget hold of theirs is left."""

    def done() -> bool:
        ended = Job.objects.filter(pk__in=job_ids, status__in=TERMINAL).count() == len(job_ids)
        return ended and not Reservation.objects.exists()

    wait_for(done, timeout=timeout, what=f"{len(job_ids)} job(s) to end with no hold left")
    return list(Job.objects.filter(pk__in=job_ids))


def batch_price_is_charged(entry: LedgerEntry) -> bool:
    usage = costs.Usage(
        input_tokens=entry.input_tokens,
        output_tokens=entry.output_tokens,
        cache_write_5m_tokens=entry.cache_write_5m_tokens,
        cache_write_1h_tokens=entry.cache_write_1h_tokens,
        cache_read_tokens=entry.cache_read_tokens,
    )
    return entry.cost_micros == costs.compute_cost(price=entry.price_version, usage=usage, batch=True).total_micros


@pytest.fixture
def roomy_budget(transactional_db) -> Budget:
    """A budget covering everyone, so every attempt's hold is a row we can watch settle."""
    return Budget.objects.create(scope="global", period="month", limit_micros=10**12)


# --- queued jobs -----------------------------------------------------------------------------


@pytest.mark.parametrize("ending_name", JOB_ENDINGS)
@pytest.mark.parametrize("content", JOB_CONTENTS)
def test_a_queued_job_bills_what_upstream_charged(worker, emulator, roomy_budget, principal, content, ending_name):
    ending = JOB_ENDINGS[ending_name]
    emulator.clear_charges()
    payload = job_payload(content, ending.marker, model=ending.model, streamed=ending.streamed)
    job = services.create(principal=principal, payload=payload)

    (job,) = settled([job.id])
    charges = emulator.charges()
    entries = list(LedgerEntry.objects.all())
    billed, upstream_charged = ledger_usage(entries), totals([c["usage"] for c in charges])
    report = json.dumps({"ledger": billed, "emulator": upstream_charged, "charges": charges}, default=str)

    assert job.status == ending.status, (job.status, job.last_error_type, job.last_error_message)
    assert tuple(c["ending"] for c in charges) == ending.charge_endings, report
    assert len(entries) == ending.ledger_lines, report  # never a second line for the same attempt
    assert {e.kind for e in entries} <= {"job"} and not any(e.batch for e in entries)
    compare = (ending.input_exact, ending.output_exact)
    for name, exact in zip(("input_tokens", "output_tokens"), compare, strict=True):
        assert billed[name] == upstream_charged[name] if exact else billed[name] >= upstream_charged[name], report
    for name in ("cache_creation_input_tokens", "cache_read_input_tokens"):
        assert billed[name] == upstream_charged[name], report
    if ending.status == "succeeded":
        assert upstream_charged["input_tokens"] > 0, "the emulator charged nothing: the cell did not run"
        assert sum(e.cost_micros for e in entries) >= job.cost_micros > 0
    if ending.model == FALLBACK_FROM:
        assert job.model_used == MODEL and job.attempts == 1  # the fallback answered on the same attempt
    roomy_budget.refresh_from_db()
    assert roomy_budget.reserved_micros == 0 and roomy_budget.spent_micros == sum(e.cost_micros for e in entries)


# --- batch jobs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchEnding:
    name: str
    marker: str
    status: str  # after the first batch
    resubmits: bool  # the job waits for a later batch; without the marker it then succeeds


BATCH_ENDINGS = {
    "succeeded": BatchEnding("succeeded", "", "succeeded", False),
    "errored": BatchEnding("errored", "[[batch:errored]]", "failed", False),  # invalid_request_error: fails at once
    "expired": BatchEnding("expired", "[[batch:expired]]", "queued", True),  # counts an attempt, waits, resubmitted
}


@pytest.fixture
def batch_settings(gateway_settings, seeded_models, emulator):
    gateway_settings.JOBS_MAX_ATTEMPTS = 3
    gateway_settings.JOBS_BATCH_MAX_REQUESTS = 50
    gateway_settings.JOBS_BATCH_MAX_WAIT_SECONDS = 0  # due at once
    gateway_settings.JOBS_BATCH_POLL_SECONDS = 0
    emulator.set_config(batch_processing_seconds=0)
    return gateway_settings


def tick() -> None:
    batches.submit_due()
    batches.poll_open()


@pytest.mark.parametrize("ending_name", BATCH_ENDINGS)
def test_batch_jobs_bill_their_results_at_the_batch_price(
    batch_settings, emulator, roomy_budget, principal, ending_name
):
    """One Message Batch carrying a job per content; each result is reconciled with its own charge
    (batch_id + custom_id), so a cell is one (content, ending) pair even though they share the batch."""
    ending = BATCH_ENDINGS[ending_name]
    emulator.clear_charges()
    jobs = {
        content: services.create(principal=principal, payload=job_payload(content, ending.marker), mode=Job.Mode.BATCH)
        for content in BATCH_CONTENTS
    }

    tick()
    assert [b.request_count for b in MessageBatch.objects.all()] == [len(jobs)]
    for content, job in jobs.items():
        job.refresh_from_db()
        assert (job.status, job.attempts) == (ending.status, 1), (content, job.status, job.last_error_type)
    assert not Reservation.objects.exists()  # the holds taken at submission went back or were settled
    if ending.resubmits:
        assert {job.last_error_type for job in jobs.values()} == {"batch_expired"}
        assert not LedgerEntry.objects.exists() and emulator.charges() == []  # an expired request charges nothing
        # The emulator's batch markers are not counted: drop the marker to let the next batch run them.
        for content, job in jobs.items():
            messages = [{"role": "user", "content": user_content(content, "")}]
            Job.objects.filter(pk=job.pk).update(payload={**job.payload, "messages": messages})
        tick()
        for content, job in jobs.items():
            job.refresh_from_db()
            assert (job.status, job.attempts) == ("succeeded", 2), (content, job.status)

    entries, charges = list(LedgerEntry.objects.all()), emulator.charges()
    if ending.status == "failed":
        assert entries == [] and charges == [], charges  # nothing charged, nothing billed
        return
    assert len(entries) == len(charges) == len(jobs), charges  # one line per result, none twice
    for content, job in jobs.items():
        entry = LedgerEntry.objects.get(subject=str(job.pk))
        (charge,) = [c for c in emulator.charges(batch_id=job.batch.upstream_id) if c["custom_id"] == str(job.pk)]
        assert charge["batch"] and charge["request_id"] is None and charge["message_id"] == entry.upstream_message_id
        assert ledger_usage([entry]) == totals([charge["usage"]]), (content, ledger_usage([entry]), charge)
        assert entry.batch and batch_price_is_charged(entry) and entry.cost_micros == job.cost_micros > 0, content
    roomy_budget.refresh_from_db()
    assert roomy_budget.reserved_micros == 0 and roomy_budget.spent_micros == sum(e.cost_micros for e in entries)


def test_a_batch_job_canceled_after_submission_is_billed_for_what_upstream_charged(
    batch_settings, emulator, roomy_budget, principal
):
    emulator.clear_charges()
    job = services.create(principal=principal, payload=job_payload("text", ""), mode=Job.Mode.BATCH)
    batches.submit_due()
    services.cancel(job_id=job.pk, principal=principal)
    batches.poll_open()

    job.refresh_from_db()
    charges = emulator.charges()
    assert job.status == "canceled" and [c["ending"] for c in charges] == ["complete"]  # upstream ran it
    assert ledger_usage(list(LedgerEntry.objects.all())) == totals([c["usage"] for c in charges])


# --- a budget race with non-text blocks ------------------------------------------------------


def large_document_payload() -> dict[str, Any]:
    document = {"type": "text", "media_type": "text/plain", "data": "x" * 108_000}
    pdf = {"type": "base64", "media_type": "application/pdf", "data": PDF}
    content = [
        {"type": "document", "source": document},
        {"type": "document", "source": pdf},  # unsure locally: the hold uses upstream's count
        {"type": "text", "text": f"Summarise. {uuid.uuid4()}"},
    ]
    return {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": content}]}


def budget_for(principal: Any, payload: dict[str, Any], *, holds: float, batch: bool) -> Budget:
    """A budget with room for `holds` worst cases of the payload: upstream's count (the document is
    large and the PDF unsure) plus max_tokens, as the worker or the batch submitter holds it."""
    hold = costs.worst_case_micros(
        price=prices.current_price(model_id=MODEL),
        input_tokens=upstream.input_bound(principal=principal, model_id=MODEL, payload=payload, batch=batch),
        max_tokens=payload["max_tokens"],
        batch=batch,
    )
    return Budget.objects.create(scope="user", scope_id=principal.user_id, period="day", limit_micros=int(hold * holds))


def assert_two_billed_and_the_rest_refused(
    jobs: list[Job], budget: Budget, emulator: Any, *, settled_room_reused: bool = False
) -> None:
    """Two held and billed, the rest refused. `settled_room_reused`: jobs that start one after another
    (a loaded worker) may find room a settled one gave back (billed below its worst case), so two or more."""
    budget.refresh_from_db()
    assert budget.spent_micros <= budget.limit_micros and budget.reserved_micros == 0
    succeeded = [job for job in jobs if job.status == "succeeded"]
    found = [(job.status, job.last_error_type, job.last_error_message) for job in jobs]
    assert len(succeeded) >= 2 if settled_room_reused else len(succeeded) == 2, found
    refused = {(job.status, job.last_error_type) for job in jobs if job.status != "succeeded"}
    assert refused == {("failed", "budget_exceeded")}
    entries = list(LedgerEntry.objects.all())
    assert sorted(e.subject for e in entries) == sorted(str(job.id) for job in succeeded)  # each billed once
    assert budget.spent_micros == sum(e.cost_micros for e in entries)
    charges = emulator.charges()
    assert len(charges) == len(succeeded) and ledger_usage(entries) == totals([c["usage"] for c in charges])


def test_queued_jobs_with_large_documents_never_take_a_budget_past_its_limit(
    worker, gateway_settings, emulator, principal
):
    """Six jobs each carrying a 108k-character document and a PDF against a budget for 2.5 of them,
    run at once by the worker: two are held, billed and succeed (a third when it starts after one of them
    settled below its worst case), the others fail with the budget error (a budget refusal fails the job;
    only a rate limit makes it wait), and the budget is never passed."""
    payloads = [large_document_payload() for _ in range(6)]
    budget = budget_for(principal, payloads[0], holds=2.5, batch=False)
    emulator.clear_charges()
    with transaction.atomic():  # published together on commit: none runs before all are created
        jobs = [services.create(principal=principal, payload=p) for p in payloads]

    ids = [job.id for job in jobs]
    assert_two_billed_and_the_rest_refused(settled(ids), budget, emulator, settled_room_reused=True)


def test_batch_jobs_with_large_documents_never_take_a_budget_past_its_limit(batch_settings, emulator, principal):
    """The same against the batch hold taken at submission (batch price): two go up, four fail."""
    payloads = [large_document_payload() for _ in range(6)]
    budget = budget_for(principal, payloads[0], holds=2.5, batch=True)
    emulator.clear_charges()
    jobs = [services.create(principal=principal, payload=p, mode=Job.Mode.BATCH) for p in payloads]

    tick()
    assert_two_billed_and_the_rest_refused(settled([job.id for job in jobs]), budget, emulator)
    assert all(e.batch and batch_price_is_charged(e) for e in LedgerEntry.objects.all())


# --- an attempt that lost its lease ----------------------------------------------------------


def test_an_attempt_that_lost_its_lease_is_billed_too(worker, emulator, roomy_budget, principal):
    """A worker stalled past its lease (its heartbeat stopped): the sweeper hands the job to another delivery
    while the first call is still in flight. Both calls were charged upstream."""
    emulator.clear_charges()
    job = services.create(principal=principal, payload=job_payload("text", "[[latency:3000]]"))
    wait_for(lambda: Job.objects.filter(pk=job.pk).exclude(reservation_id=None).exists(), what="the first call")
    with transaction.atomic():  # the row lock keeps the live heartbeat from renewing it in between
        Job.objects.select_for_update().filter(pk=job.pk).update(lease_expires_at=timezone.now() - dt.timedelta(1))
        assert sweeper.recover_expired_leases() == (1, 0)

    (job,) = settled([job.id])
    charges = emulator.charges()
    assert job.status == "succeeded" and job.attempts == 2 and [c["ending"] for c in charges] == ["complete"] * 2
    assert ledger_usage(list(LedgerEntry.objects.all())) == totals([c["usage"] for c in charges])
