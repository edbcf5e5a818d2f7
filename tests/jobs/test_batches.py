"""Jobs with mode=batch through the Message Batches API: the beat task's steps run in-process
against the real emulator and the test database; no Celery worker is involved (or allowed)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import redis
from django.contrib.admin.sites import site
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from billing import costs, prices
from billing.models import Budget, LedgerEntry, RateLimitPolicy, Reservation
from claudeapp.api import keys
from claudeapp.claude import batches as api
from claudeapp.core import logcontext, metrics
from claudeapp.jobs import batches, runner, services
from claudeapp.jobs.models import Job, MessageBatch
from claudeapp.requestlog import buffer
from claudeapp.requestlog.models import RequestLog

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def quiet_queue_at_teardown(transactional_db):
    """Overrides the folder's fixture: no worker runs here, and batch jobs may end the test `running`."""
    yield


@pytest.fixture
def batch_settings(gateway_settings, seeded_models, emulator):
    gateway_settings.JOBS_MAX_ATTEMPTS = 3
    gateway_settings.JOBS_BATCH_MAX_REQUESTS = 50
    gateway_settings.JOBS_BATCH_MAX_WAIT_SECONDS = 0  # due at once unless a test says otherwise
    gateway_settings.JOBS_BATCH_POLL_SECONDS = 0
    emulator.set_config(batch_processing_seconds=0)
    return gateway_settings


@pytest.fixture
def budget_factory(transactional_db) -> Callable[..., Budget]:
    def make(**fields: Any) -> Budget:
        fields.setdefault("period", "month")
        fields.setdefault("period_start", dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        return Budget.objects.create(**fields)

    return make


@pytest.fixture
def batch_job(batch_settings, principal, payload_factory) -> Callable[..., Job]:
    def make(text: str = "Say hello.", **fields: Any) -> Job:
        return services.create(principal=principal, payload=payload_factory(text, **fields), mode=Job.Mode.BATCH)

    return make


def _creates(emulator) -> int:
    return emulator.stats()["by_path"].get("POST /v1/messages/batches", 0)


def _tick() -> None:
    batches.submit_due()
    batches.poll_open()


def _refresh(jobs: list[Job]) -> list[Job]:
    for job in jobs:
        job.refresh_from_db()
    return jobs


def test_batch_jobs_for_two_models_go_up_as_two_batches_and_no_job_twice(batch_job, emulator):
    haiku = [batch_job() for _ in range(4)]
    sonnet = [batch_job(model="claude-sonnet-5-5") for _ in range(3)]
    barrier = threading.Barrier(3)

    def submit() -> None:
        barrier.wait()
        try:
            batches.submit_due()
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batches.submit_due()  # and once more after they all committed

    sent = MessageBatch.objects.order_by("model")
    assert [(b.model, b.request_count, b.status) for b in sent] == [
        ("claude-haiku-5-5", 4, "in_progress"),
        ("claude-sonnet-5-5", 3, "in_progress"),
    ]
    assert _creates(emulator) == 2 and all(b.upstream_id.startswith("msgbatch_") for b in sent)
    for job in _refresh(haiku + sonnet):
        assert job.status == "running" and job.attempts == 1 and job.batch.model == job.model_requested
        assert job.lease_expires_at > timezone.now() + dt.timedelta(hours=23)


def test_succeeded_results_are_billed_once_at_the_batch_discount(batch_job):
    jobs = [batch_job(f"Write a line about item {n}.") for n in range(3)]
    _tick()
    _tick()  # a second pass over the ended batch applies nothing again

    for job in _refresh(jobs):
        entry = LedgerEntry.objects.get(event_key=f"job:{job.pk}")
        price = prices.current_price(model_id=job.model_used)
        usage = costs.Usage.from_anthropic(job.usage)
        assert entry.batch and job.status == "succeeded" and job.result["content"][0]["text"]
        half, full = (costs.compute_cost(price=price, usage=usage, batch=b).total_micros for b in (True, False))
        assert entry.cost_micros == job.cost_micros == half and abs(2 * half - full) <= 1
    assert LedgerEntry.objects.filter(kind="job").count() == 3
    assert MessageBatch.objects.get().status == "done" and MessageBatch.objects.get().succeeded_count == 3


def test_a_retryable_error_goes_into_a_later_batch_and_then_succeeds(batch_job, emulator):
    job = batch_job("Flaky [[batch:errored:overloaded_error]]")
    _tick()
    job.refresh_from_db()
    assert (job.status, job.attempts, job.last_error_type) == ("queued", 1, "overloaded_error")
    assert not LedgerEntry.objects.exists()

    # The emulator's batch markers are not counted: drop the marker to play a transient overload.
    Job.objects.filter(pk=job.pk).update(payload={**job.payload, "messages": [{"role": "user", "content": "Fine now"}]})
    _tick()
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("succeeded", 2) and MessageBatch.objects.count() == 2
    assert job.batch.status == "done" and LedgerEntry.objects.filter(event_key=f"job:{job.pk}").count() == 1


def test_an_invalid_request_result_fails_at_once(batch_job):
    job = batch_job("Bad [[batch:errored:invalid_request_error]]")
    _tick()
    job.refresh_from_db()
    assert (job.status, job.attempts, job.last_error_type) == ("failed", 1, "invalid_request_error")
    assert job.finished_at is not None and not LedgerEntry.objects.exists()


def test_an_expired_request_is_resubmitted_and_counts_as_an_attempt_until_dead(batch_job, emulator):
    job = batch_job("Slow [[batch:expired]]")
    for attempt in (1, 2):
        _tick()
        job.refresh_from_db()
        assert (job.status, job.attempts, job.last_error_type) == ("queued", attempt, "batch_expired")
    _tick()  # the third of JOBS_MAX_ATTEMPTS=3
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("dead", 3) and _creates(emulator) == 3


def test_count_trigger_submits_a_full_group_and_max_wait_submits_the_rest(batch_job, batch_settings, emulator):
    batch_settings.JOBS_BATCH_MAX_REQUESTS = 3
    batch_settings.JOBS_BATCH_MAX_WAIT_SECONDS = 60
    first = [batch_job() for _ in range(2)]
    assert batches.submit_due() == [] and _creates(emulator) == 0  # two waiting, none old enough

    third = batch_job()
    full = batches.submit_due()
    assert [b.request_count for b in full] == [3]
    assert {j.batch_id for j in _refresh([*first, third])} == {full[0].pk}

    late = batch_job()
    assert batches.submit_due() == []
    waited = batches.submit_due(now=timezone.now() + dt.timedelta(seconds=61))
    assert [b.request_count for b in waited] == [1] and _refresh([late])[0].batch_id == waited[0].pk


def test_batch_jobs_are_never_published_to_celery(batch_settings, principal, payload_factory, settings):
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    before = broker.llen("interactive")
    job = services.create(principal=principal, payload=payload_factory(), mode=Job.Mode.BATCH)

    assert broker.llen("interactive") == before and job.status == "queued"
    assert runner.claim(job_id=job.pk) is None  # a stray message could not run it either
    runner.enqueue(job_id=job.pk, queue="interactive")  # even published by hand ...
    assert Job.objects.get(pk=job.pk).attempts == 0  # ... the claim refuses it (no worker needed to see that)
    broker.delete("interactive")


def test_canceling_a_job_in_a_submitted_batch_hides_its_result_but_bills_what_upstream_charged(
    batch_job, budget_factory, principal
):
    budget = budget_factory(scope="user", scope_id=principal.user_id, limit_micros=10_000_000)
    kept, dropped = batch_job(), batch_job()
    batches.submit_due()
    assert Reservation.objects.count() == 2 and Budget.objects.get(pk=budget.pk).reserved_micros > 0

    services.cancel(job_id=dropped.pk, principal=principal)
    batches.poll_open()

    kept, dropped = _refresh([kept, dropped])
    assert (kept.status, dropped.status) == ("succeeded", "canceled") and dropped.result is None
    canceled_bill = LedgerEntry.objects.get(subject=str(dropped.pk))
    assert canceled_bill.batch and canceled_bill.event_key.startswith(f"job:{dropped.pk}:canceled-in:")
    budget.refresh_from_db()
    assert budget.reserved_micros == 0
    assert budget.spent_micros == kept.cost_micros + canceled_bill.cost_micros and canceled_bill.cost_micros > 0


def test_cancel_upstream_sends_unprocessed_jobs_to_the_next_batch(batch_job, emulator, admin_client):
    emulator.set_config(batch_processing_seconds=3600)
    jobs = [batch_job() for _ in range(2)]
    (batch,) = batches.submit_due()

    response = admin_client.post(
        "/admin/jobs/messagebatch/", {"action": "cancel_upstream", "_selected_action": [batch.pk]}, follow=True
    )
    assert response.status_code == 200 and MessageBatch.objects.get(pk=batch.pk).status == "canceling"
    batches.poll_open()

    batch.refresh_from_db()
    assert batch.status == "done" and batch.canceled_count == 2
    assert [(j.status, j.attempts) for j in _refresh(jobs)] == [("queued", 0), ("queued", 0)]
    emulator.set_config(batch_processing_seconds=0)
    _tick()
    assert {j.status for j in _refresh(jobs)} == {"succeeded"} and MessageBatch.objects.count() == 2


def test_a_refused_create_fails_only_the_named_request(batch_job, emulator):
    good = batch_job()
    bad = batch_job(temperature=0.5)  # refused under API version 2026-10-21: the create answers 400 for requests.1
    batches.submit_due()

    good, bad = _refresh([good, bad])
    assert bad.status == "failed" and bad.last_error_status == 400
    assert (good.status, good.attempts) == ("queued", 0) and MessageBatch.objects.get().status == "failed"
    _tick()
    assert _refresh([good])[0].status == "succeeded"


def test_batch_jobs_left_behind_by_a_dead_submitter_go_back_to_waiting(batch_job):
    job = batch_job()
    (claimed_batch, _), *_ = batches.claim_due(now=timezone.now())  # the process "dies" before the create
    assert batches.recover_stale() == 0
    assert batches.recover_stale(now=timezone.now() + batches.SUBMIT_GRACE + dt.timedelta(seconds=1)) == 1

    job.refresh_from_db()
    claimed_batch.refresh_from_db()
    assert (job.status, job.attempts, claimed_batch.status) == ("queued", 1, "failed")


@pytest.mark.urls("tests.jobs.urls")
def test_the_api_accepts_mode_batch_and_the_admin_lists_the_batch(batch_settings, user_factory, admin_client):
    _, raw = keys.create_key(owner=user_factory(), name="partner", scopes=("jobs",))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = {"model": "claude-haiku-5-5", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}

    response = client.post("/api/v1/jobs", {**body, "mode": "batch"}, format="json")
    assert response.status_code == 202 and Job.objects.get().mode == "batch"
    _tick()
    assert client.get(response["Location"]).json()["status"] == "succeeded"
    assert MessageBatch in site._registry
    page = admin_client.get(f"/admin/jobs/messagebatch/{MessageBatch.objects.get().pk}/change/")
    assert page.status_code == 200 and str(Job.objects.get().pk) in page.content.decode()


def test_batch_requests_take_no_request_slot_each(batch_job, principal):
    RateLimitPolicy.objects.create(scope="user", scope_id=principal.user_id, requests_per_minute=1)
    jobs = [batch_job() for _ in range(3)]

    batches.submit_due()

    assert MessageBatch.objects.get().request_count == 3  # one create call, not three requests
    assert {job.status for job in _refresh(jobs)} == {"running"}


def test_batch_requests_beyond_the_token_limit_wait_for_a_later_batch_with_their_attempt_back(
    batch_job, budget_factory, principal
):
    # 64 output tokens each (max_tokens) against 100 per minute: the first fits, the other two do not.
    RateLimitPolicy.objects.create(scope="user", scope_id=principal.user_id, output_tokens_per_minute=100)
    budget_factory(scope="user", scope_id=principal.user_id, limit_micros=10_000_000)
    jobs = [batch_job() for _ in range(3)]

    batches.submit_due()

    assert MessageBatch.objects.get().request_count == 1
    sent, *waiting = sorted(_refresh(jobs), key=lambda job: job.status != "running")
    assert sent.status == "running" and Reservation.objects.get().pk == sent.reservation_id  # held at submission
    for job in waiting:
        assert (job.status, job.attempts, job.last_error_type) == ("queued", 0, "rate_limited")
        assert job.next_attempt_at > timezone.now()  # not in the next tick's batch: after the limit has room
    batches.submit_due()
    assert MessageBatch.objects.count() == 1


def test_a_poller_killed_mid_fan_out_is_redone_by_the_next_tick_and_none_is_billed_twice(batch_job):
    jobs = [batch_job(f"Write a line about item {n}.") for n in range(3)]
    (batch,) = batches.submit_due()
    batch.refresh_from_db()
    # What a poller killed after applying its first result leaves behind: the batch recorded as ended
    # (committed before the fan-out), one job settled, two still running in it.
    MessageBatch.objects.filter(pk=batch.pk).update(status=MessageBatch.Status.ENDED)
    custom_id, result = next(iter(api.results(batch.upstream_id)))
    batches.apply_result(batch=batch, job_id=custom_id, result=result)
    assert sorted(job.status for job in _refresh(jobs)) == ["running", "running", "succeeded"]

    batches.tick()  # the next beat: no lease to wait for, the ended batch is read again

    assert {job.status for job in _refresh(jobs)} == {"succeeded"}
    for job in jobs:
        assert LedgerEntry.objects.filter(event_key=f"job:{job.pk}").count() == 1
    assert MessageBatch.objects.get(pk=batch.pk).status == "done"


# --- the request log: one line per batch item settled, surface `batches`

ENDINGS = {  # prompt -> (the line's status, error type); a canceled result never ran: no line
    "Say hello.": ("complete", None),
    "Bad [[batch:errored:invalid_request_error]]": ("failed", "invalid_request_error"),
    "Flaky [[batch:errored:overloaded_error]]": ("failed", "overloaded_error"),  # back to wait: still an ending
    "Slow [[batch:expired]]": ("failed", "batch_expired"),
    "Stop [[batch:canceled]]": (None, None),
}


def _batch_lines(jobs: Iterable[Job]) -> dict[str, RequestLog]:
    """The jobs' lines (by job id): this process's rows, where the poller runs. By id, since a row another
    test's poll queued may be written by the flusher thread after that test's tables were emptied."""
    buffer.flush()
    return {row.request_id: row for row in RequestLog.objects.filter(request_id__in=[str(j.pk) for j in jobs])}


def _requests_counted(status: str, model: str) -> float:
    labels = {"surface": "batches", "status": status, "model": model}
    return metrics.registry().get_sample_value("claudeapp_requests_total", labels) or 0.0


def test_each_batch_result_is_one_request_log_line_with_what_the_ledger_billed_and_a_redo_adds_none(batch_job):
    buffer._rows.clear()  # rows other tests' calls left in this process
    jobs = {prompt: batch_job(prompt) for prompt in ENDINGS}
    counted = {status: _requests_counted(status, "claude-haiku-5-5") for status in ("complete", "failed")}
    _tick()
    (batch,) = MessageBatch.objects.all()
    MessageBatch.objects.filter(pk=batch.pk).update(status=MessageBatch.Status.ENDED)
    batches.fan_out(batch)  # the fan-out redone (a poller killed before marking the batch done): nothing new

    lines = _batch_lines(jobs.values())
    assert set(lines) == {str(job.pk) for prompt, job in jobs.items() if ENDINGS[prompt][0]}
    for prompt, (status, error_type) in ENDINGS.items():
        job = Job.objects.get(pk=jobs[prompt].pk)
        if status is None:
            assert (job.status, job.attempts) == ("queued", 0)  # back to wait, attempt refunded, not a call
            continue
        line = lines[str(job.pk)]
        assert (line.status, line.error_type or None, line.duration_ms) == (status, error_type, None), prompt
        assert (line.principal_kind, line.principal_id) == (job.principal_kind, job.principal_id)
        assert (line.model_requested, line.upstream_request_id) == (batch.model, batch.upstream_id)
        assert line.route_decision_id == job.routing_decision_id
        entry = LedgerEntry.objects.filter(event_key=f"job:{job.pk}").first()
        if status == "complete":
            assert line.http_status == 200 and line.model_used == entry.model_id == job.model_used
            billed = (entry.input_tokens, entry.output_tokens, entry.cache_read_tokens, entry.cost_micros)
            assert (line.input_tokens, line.output_tokens, line.cache_read_tokens, line.cost_micros) == billed
            assert line.cache_write_tokens == entry.cache_write_5m_tokens + entry.cache_write_1h_tokens
            assert line.cost_micros == job.cost_micros > 0
        else:
            assert entry is None and line.http_status is None and line.model_used == batch.model
            assert (line.input_tokens, line.output_tokens, line.cost_micros) == (0, 0, 0)
    assert _requests_counted("complete", batch.model) - counted["complete"] == 1
    assert _requests_counted("failed", batch.model) - counted["failed"] == 3


def test_a_job_canceled_in_its_batch_but_billed_upstream_is_one_complete_line_however_often_polled(
    batch_job, principal
):
    buffer._rows.clear()
    kept, dropped = batch_job(), batch_job()
    (batch,) = batches.submit_due()
    services.cancel(job_id=dropped.pk, principal=principal)
    batches.poll_open()
    batch.refresh_from_db()
    MessageBatch.objects.filter(pk=batch.pk).update(status=MessageBatch.Status.ENDED)
    batches.fan_out(batch)  # read again: the canceled job's bill is known, not logged twice

    lines = _batch_lines([kept, dropped])
    assert set(lines) == {str(kept.pk), str(dropped.pk)}
    bill = LedgerEntry.objects.get(subject=str(dropped.pk))
    line = lines[str(dropped.pk)]
    assert (line.status, line.cost_micros, line.output_tokens) == ("complete", bill.cost_micros, bill.output_tokens)
    assert bill.cost_micros > 0 and LedgerEntry.objects.filter(subject=str(dropped.pk)).count() == 1


def test_a_batch_line_carries_the_batches_surface_and_the_job_id_whatever_context_polls(batch_job, caplog):
    buffer._rows.clear()
    job = batch_job()
    logcontext.bind(request_id="req_beat_task", surface="jobs")  # what the beat task's worker has bound
    try:
        with caplog.at_level(logging.INFO, logger="claudeapp.calls"):
            _tick()
        assert logcontext.current().request_id == "req_beat_task"  # the poller's own context, unchanged after
    finally:
        logcontext.clear()
    (record,) = [r for r in caplog.records if getattr(r, "event", None) == "call"]
    assert (record.surface, record.request_id, record.job_id) == ("batches", str(job.pk), str(job.pk))
    assert (record.batch_result, record.job_status) == ("succeeded", "succeeded")
    assert _batch_lines([job])[str(job.pk)].surface == "batches"


# --- endings short of a result: refused at submit, a refused create, a lease run out


def _lines_of(job: Job) -> list[RequestLog]:
    """Every line of one job, oldest first (a job sent back and run again has one per ending)."""
    buffer.flush()
    return list(RequestLog.objects.filter(request_id=str(job.pk)).order_by("created_at", "pk"))


def _refusals_counted(kind: str) -> float:
    name = "claudeapp_limit_refusals_total" if kind == "limit" else "claudeapp_budget_refusals_total"
    return metrics.registry().get_sample_value(name, {"surface": "batches"}) or 0.0


def test_jobs_the_token_limit_keeps_out_of_the_batch_are_refused_lines_with_429(batch_job, principal):
    buffer._rows.clear()
    RateLimitPolicy.objects.create(scope="user", scope_id=principal.user_id, output_tokens_per_minute=100)
    jobs = [batch_job() for _ in range(3)]  # 64 output tokens each: one fits the minute
    refused_before = (_requests_counted("refused", "claude-haiku-5-5"), _refusals_counted("limit"))

    _tick()
    batches.submit_due()  # the refused two are not due yet: nothing new

    (batch,) = MessageBatch.objects.all()
    sent, *waiting = sorted(_refresh(jobs), key=lambda job: job.status != "succeeded")
    assert [(line.status, line.http_status) for line in _lines_of(sent)] == [("complete", 200)]
    for job in waiting:
        (line,) = _lines_of(job)
        assert (job.status, job.attempts) == ("queued", 0)
        assert (line.surface, line.status, line.http_status, line.error_type) == (
            "batches",
            "refused",
            429,
            "rate_limited",
        )
        assert (line.principal_kind, line.principal_id) == (job.principal_kind, job.principal_id)
        assert (line.model_requested, line.model_used, line.upstream_request_id) == (batch.model, "", "")
        assert (line.cost_micros, line.duration_ms) == (0, None)
    refused_after = (_requests_counted("refused", "claude-haiku-5-5"), _refusals_counted("limit"))
    assert [after - before for after, before in zip(refused_after, refused_before, strict=True)] == [2, 2]


def test_a_job_its_budget_refuses_at_submit_fails_with_one_refused_line_with_402(batch_job, budget_factory, principal):
    buffer._rows.clear()
    job = batch_job()
    budget_factory(scope="user", scope_id=principal.user_id, limit_micros=1)  # set after the job was taken
    refused_before = _refusals_counted("budget")

    assert batches.submit_due() == []
    batches.tick()  # a later beat: the job is failed, nothing to redo

    job.refresh_from_db()
    (line,) = _lines_of(job)
    assert (job.status, job.last_error_type) == ("failed", "budget_exceeded")
    assert (line.surface, line.status, line.http_status, line.error_type) == (
        "batches",
        "refused",
        402,
        "budget_exceeded",
    )
    assert (line.model_requested, line.cost_micros) == (MessageBatch.objects.get().model, 0)
    assert _refusals_counted("budget") - refused_before == 1
    assert not Reservation.objects.exists() and not LedgerEntry.objects.exists()


def test_a_refused_create_is_one_failed_line_for_each_job_sent_back_or_failed_and_none_again(batch_job):
    buffer._rows.clear()
    good = batch_job()
    bad = batch_job(temperature=0.5)  # the create answers 400 for requests.1
    failed_before = _requests_counted("failed", "claude-haiku-5-5")

    batches.submit_due()
    _tick()  # the good one goes up again and succeeds; the failed one is not touched again

    good, bad = _refresh([good, bad])
    refused, later = MessageBatch.objects.order_by("pk")
    (bad_line,) = _lines_of(bad)
    assert (bad.status, bad_line.status, bad_line.http_status) == ("failed", "failed", 400)
    assert bad_line.error_type == bad.last_error_type == "invalid_request_error"
    assert bad_line.upstream_request_id == bad.last_error_request_id != ""  # the create's request-id
    assert (bad_line.model_requested, bad_line.model_used) == (refused.model, refused.model)
    sent_back, done = _lines_of(good)
    assert (sent_back.status, sent_back.http_status, sent_back.error_type) == ("failed", 400, "invalid_request_error")
    assert (done.status, done.upstream_request_id, good.status, good.attempts) == (
        "complete",
        later.upstream_id,
        "succeeded",
        1,
    )
    assert all(line.surface == "batches" and line.cost_micros == 0 for line in (bad_line, sent_back))
    assert _requests_counted("failed", "claude-haiku-5-5") - failed_before == 2


def test_a_lost_batch_job_is_logged_only_when_buried_at_its_last_attempt(batch_job):
    buffer._rows.clear()
    later, last = batch_job(), batch_job()
    Job.objects.filter(pk=last.pk).update(max_attempts=1)
    batches.claim_due(now=timezone.now())  # the submitter "dies" before the create
    after_grace = timezone.now() + batches.SUBMIT_GRACE + dt.timedelta(seconds=1)

    assert batches.recover_stale(now=after_grace) == 2
    assert batches.recover_stale(now=after_grace) == 0  # redone: nothing left running, nothing logged

    later, last = _refresh([later, last])
    assert (later.status, last.status) == ("queued", "dead")
    assert _lines_of(later) == []  # a lease run out ends no call: its next batch logs it
    (line,) = _lines_of(last)
    assert (line.surface, line.status, line.error_type, line.http_status) == ("batches", "failed", "batch_lost", None)
    assert (line.model_requested, line.upstream_request_id, line.cost_micros) == ("claude-haiku-5-5", "", 0)


def test_a_job_the_model_map_refuses_at_claim_is_one_failed_line(batch_job):
    from routing import modelmap
    from routing.models import Model

    buffer._rows.clear()
    job = batch_job()
    Model.objects.filter(model_id=job.routed_model).update(enabled=False)  # disabled after the job was taken
    modelmap.invalidate_local()
    try:
        assert batches.submit_due() == [] and batches.submit_due() == []
    finally:
        Model.objects.filter(model_id=job.routed_model).update(enabled=True)
        modelmap.invalidate_local()
        modelmap.bump_version()

    job.refresh_from_db()
    (line,) = _lines_of(job)
    assert (job.status, line.surface, line.status) == ("failed", "batches", "failed")
    assert (line.error_type, line.http_status, line.model_requested) == ("model_disabled", None, job.routed_model)
    assert not MessageBatch.objects.exists()
