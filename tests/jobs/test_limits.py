"""Rate limits hold for queued work: a job takes its ticket when it runs; with no room it waits
(back to queued with a countdown, its attempt given back) rather than running or failing."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import LedgerEntry, RateLimitPolicy
from claudeapp.accounts.principals import Principal
from claudeapp.api import keys
from claudeapp.conversations import background
from claudeapp.conversations import services as conversations
from claudeapp.jobs import upstream
from claudeapp.jobs.models import Job
from tests.jobs.conftest import wait_for, wait_for_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.jobs.urls")]

# GCRA with RPM requests per minute: a burst of RPM, then one slot every 60 / RPM s. Eight jobs under
# RPM 6: six at once, then two that wait a slot each (about 20 s; RPM 3 took the suite 100 s).
RPM = 6
SLOT_SECONDS = 60 / RPM
JOBS = 8
# The limiter decides before the call; the emulator stamps the call when it arrives, a moment later.
ARRIVAL_SLACK = 2.0


def _generation_times(emulator, since: float) -> list[float]:
    recent = emulator.stats()["recent"]
    return sorted(r["time"] for r in recent if r["path"] == "/v1/messages" and r["time"] >= since)


def test_eight_jobs_under_an_rpm_6_key_call_upstream_no_faster_than_the_limit_and_all_succeed_once(
    worker, emulator, user_factory, capsys
):
    key, raw = keys.create_key(owner=user_factory(), name="partner", scopes=("jobs",))
    RateLimitPolicy.objects.create(scope="partner_key", scope_id=key.pk, requests_per_minute=RPM)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    since = time.time()

    ids = []
    for n in range(JOBS):
        body = {"model": "claude-haiku-5-5", "max_tokens": 32, "messages": [{"role": "user", "content": f"Job {n}"}]}
        response = client.post("/api/v1/jobs", body, format="json")
        assert response.status_code == 202
        ids.append(response.json()["id"])
    wait_for_status(ids, {"succeeded"}, timeout=300)  # RPM at once, then one per slot

    calls = _generation_times(emulator, since)
    assert len(calls) == JOBS  # one upstream call per job: a job that found no room did not call
    with capsys.disabled():
        print(f"\nRPM {RPM}, {JOBS} jobs: upstream calls at {[round(t - calls[0], 1) for t in calls]} s")
    # The k-th call (0-based) comes no sooner than (k - RPM + 1) slots after the first: RPM in the first
    # slot, one more per slot after (GCRA refills continuously; it is not a fixed one-minute window).
    for k, at in enumerate(calls):
        assert at - calls[0] >= (k - RPM + 1) * SLOT_SECONDS - ARRIVAL_SLACK, [round(t - calls[0], 1) for t in calls]
    jobs = list(Job.objects.filter(pk__in=ids))
    assert all(job.attempts == 1 for job in jobs)  # waiting for the limit burned no attempt
    # The ones past the burst had to wait for a slot (a succeeded job no longer shows the "rate_limited" it waited on).
    assert sum(at - calls[0] >= SLOT_SECONDS - ARRIVAL_SLACK for at in calls) >= JOBS - RPM
    keys_ = [upstream.ledger_event_key(job.id) for job in jobs]
    assert LedgerEntry.objects.filter(event_key__in=keys_).count() == JOBS


def test_a_chat_turn_run_in_background_waits_for_the_users_rate_limit(worker, emulator, user_factory):
    user = user_factory()
    RateLimitPolicy.objects.create(scope="user", scope_id=user.pk, requests_per_minute=1)
    principal = Principal.for_user(user)
    conversation = conversations.create_conversation(owner_id=user.pk)
    since = time.time()

    first = background.submit(
        principal=principal, conversation=conversation, user_text="First", model_choice="claude-haiku-5-5"
    )
    wait_for_status([first.job_id], {"succeeded"})
    second = background.submit(
        principal=principal, conversation=conversation, user_text="Second", model_choice="claude-haiku-5-5"
    )
    wait_for(
        lambda: Job.objects.filter(pk=second.job_id, status="queued", last_error_type="rate_limited").exists(),
        what="the second turn's job to wait for the limit",
    )

    waiting = Job.objects.get(pk=second.job_id)
    assert waiting.attempts == 0 and waiting.next_attempt_at > timezone.now()  # its slot is a minute after the first
    assert len(_generation_times(emulator, since)) == 1  # the second turn did not reach upstream
