"""A call refused before any upstream call has one HTTP status per kind (a limit, a budget), from one table:
calls/errors.py's REFUSAL_STATUS. What /api/v1 and /anthropic answer and what the request log keeps for a
web call, a job attempt and a batch job all read it, so the caller and the operator see the same status.
The table is swapped for statuses nobody writes by hand: a place with its own 429 or 402 fails here."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from django.utils import timezone

from billing.errors import BudgetExceeded, RateLimited
from claudeapp.accounts.principals import Principal
from claudeapp.api.call_errors import describe_call_error
from claudeapp.calls import observe
from claudeapp.calls.errors import BUDGET, LIMIT, REFUSAL_STATUS, UpstreamBusy
from claudeapp.core import logcontext, metrics
from claudeapp.jobs import upstream
from claudeapp.jobs.models import Job
from claudeapp.ops import job_calls
from claudeapp.requestlog import buffer
from claudeapp.requestlog.models import RequestLog

SWAPPED = {LIMIT: 499, BUDGET: 498}
# The job row a refused attempt leaves: waiting for our limit's room, or failed by the budget.
JOB_ENDINGS = {LIMIT: ("queued", "rate_limited"), BUDGET: ("failed", "budget_exceeded")}


@pytest.fixture
def swapped(monkeypatch):
    for kind, status in SWAPPED.items():
        monkeypatch.setitem(REFUSAL_STATUS, kind, status)


@pytest.fixture
def logged(db):
    """logged() -> the request log rows written so far, by request id."""
    with buffer._flush_lock:  # the flusher thread waits: these rows are this test's to write
        buffer._rows.clear()
        RequestLog.objects.all().delete()

        def rows() -> dict[str, RequestLog]:
            buffer.flush()
            return {row.request_id: row for row in RequestLog.objects.all()}

        yield rows
        buffer._rows.clear()
    logcontext.clear()


def refusal(kind: str) -> BaseException:
    if kind == LIMIT:
        return RateLimited(retry_after_seconds=2.0)
    resets_at = timezone.now() + dt.timedelta(hours=1)
    return BudgetExceeded(scope="user", scope_id=1, limit_micros=10, spent_micros=10, resets_at=resets_at)


@pytest.mark.parametrize("kind", [LIMIT, BUDGET])
def test_the_api_answers_a_refusal_with_the_tables_status(kind, swapped):
    error = refusal(kind)
    assert describe_call_error(error).status == SWAPPED[kind]  # /api/v1
    assert describe_call_error(error, anthropic=True).status == SWAPPED[kind]  # /anthropic


@pytest.mark.parametrize("kind", [LIMIT, BUDGET])
def test_a_refused_web_call_is_logged_with_the_tables_status(kind, swapped, logged, user_factory):
    logcontext.bind(request_id=f"req_{kind}", surface="api")
    observe.refused(principal=Principal.for_user(user_factory()), requested_model="m", error=refusal(kind))
    row = logged()[f"req_{kind}"]
    assert (row.status, row.http_status) == ("refused", SWAPPED[kind])


@pytest.mark.parametrize("kind", [LIMIT, BUDGET])
def test_a_refused_job_attempt_is_logged_with_the_tables_status(kind, swapped, logged, user_factory):
    status, error_type = JOB_ENDINGS[kind]
    person = Principal.for_user(user_factory())
    job = Job.objects.create(principal_kind=person.kind, principal_id=person.id, user_id=person.user_id, payload={},
                             model_requested="m", status=status, last_error_type=error_type)  # fmt: skip
    logcontext.bind(request_id=f"req_{kind}", surface="jobs", job_id=str(job.pk))  # as the worker's prerun does
    job_calls.log_attempt(task=SimpleNamespace(name=job_calls.RUN_JOB))
    row = logged()[f"req_{kind}"]
    assert (row.status, row.http_status, row.surface) == ("refused", SWAPPED[kind], "jobs")


@pytest.mark.parametrize("kind", [LIMIT, BUDGET])
def test_a_batch_job_refused_at_submit_is_logged_and_counted_by_the_tables_status(kind, swapped, logged):
    status = upstream.refusal_status(upstream.classify(refusal(kind)))
    assert status == SWAPPED[kind]
    counter = "claudeapp_limit_refusals_total" if kind == LIMIT else "claudeapp_budget_refusals_total"
    before = metrics.registry().get_sample_value(counter, {"surface": observe.BATCHES}) or 0.0
    observe.batch_item(request_id=f"req_{kind}", status="refused", principal_kind="user", principal_id=1,
                       model_requested="m", model_used="", upstream_request_id="", http_status=status)  # fmt: skip
    assert metrics.registry().get_sample_value(counter, {"surface": observe.BATCHES}) == before + 1
    assert logged()[f"req_{kind}"].http_status == SWAPPED[kind]


def test_upstream_room_refuses_as_a_limit(logged, user_factory):
    """UpstreamBusy's answer is registered at start (the table unswapped, as the registry read it): a limit's."""
    busy = UpstreamBusy(model_id="m", retry_after_seconds=1.0)
    assert describe_call_error(busy).status == REFUSAL_STATUS[LIMIT] == 429
    logcontext.bind(request_id="req_busy", surface="api")
    observe.refused(principal=Principal.for_user(user_factory()), requested_model="m", error=busy)
    assert logged()["req_busy"].http_status == REFUSAL_STATUS[LIMIT]
