"""Issue 14's /api/v1 job fixes: `auto` + batch routes before grouping, a succeeded job shows no stale
error, a revoked key's pending jobs are canceled, the one list shape with its filters, `eta` on batch jobs."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from claudeapp.api import keys
from claudeapp.jobs import batches, transitions, upstream
from claudeapp.jobs.models import Job, MessageBatch
from claudeapp.jobs.rendering import job_json


@pytest.fixture
def partner(user_factory, seeded_models):
    key, raw = keys.create_key(owner=user_factory(), name="partner", scopes=["jobs"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    yield key, client
    # Rows these tests leave `running` belong to no worker or batch poller: drop them before the
    # package's teardown waits for running jobs to end.
    Job.objects.filter(principal_kind="partner_key", principal_id=key.pk, status="running").delete()


def _body(text: str = "Hi", **fields) -> dict:
    return {"model": "claude-haiku-5-5", "max_tokens": 32, "messages": [{"role": "user", "content": text}], **fields}


def test_auto_with_mode_batch_is_routed_at_creation_and_grouped_under_that_model(no_worker, partner, settings):
    _, client = partner
    response = client.post("/api/v1/jobs", _body(model="auto", mode="batch"), format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    routed = body["route"]["model"]
    assert body["model_requested"] == "auto" and routed.startswith("claude-") and body["mode"] == "batch"
    # The grouping (a beat task) sees a real model, never `auto`: the job goes into a batch for it.
    later = timezone.now() + dt.timedelta(seconds=settings.JOBS_BATCH_MAX_WAIT_SECONDS + 1)
    claimed = batches.claim_due(now=later)
    assert [(batch.model, [str(job.pk) for job in jobs]) for batch, jobs in claimed] == [(routed, [body["id"]])]


def test_a_batch_job_carries_an_eta_and_a_queued_one_does_not(no_worker, partner, settings):
    _, client = partner
    batch = client.post("/api/v1/jobs", _body(mode="batch"), format="json").json()
    queued = client.post("/api/v1/jobs", _body(mode="queue"), format="json").json()
    assert queued["eta"] is None
    created = dt.datetime.fromisoformat(batch["created_at"])
    wait = settings.JOBS_BATCH_MAX_WAIT_SECONDS + settings.JOBS_BATCH_POLL_SECONDS
    expected = created + dt.timedelta(seconds=wait + settings.JOBS_BATCH_EXPECTED_SECONDS)
    assert abs(dt.datetime.fromisoformat(batch["eta"]) - expected) < dt.timedelta(seconds=5)


def test_a_submitted_batch_jobs_eta_counts_from_the_submission(partner, queued_job_row):
    key, _ = partner
    submitted = timezone.now() - dt.timedelta(minutes=10)
    batch = MessageBatch.objects.create(model="claude-haiku-5-5", status="in_progress", submitted_at=submitted)
    job = queued_job_row(key, mode="batch", status="running", batch=batch)
    assert job_json(job)["eta"] == (submitted + dt.timedelta(hours=1)).isoformat()


def test_a_job_that_succeeded_after_a_failed_attempt_shows_no_error(partner, queued_job_row):
    key, _ = partner
    job = queued_job_row(key, status="running")
    failure = upstream.Failure(True, 1.0, 529, "overloaded_error", "Overloaded", "req_1")
    transitions.retry_later(job=job, failure=failure, delay=0)
    assert job_json(job)["error"]["type"] == "overloaded_error"  # while it waits, it says why
    transitions.start_attempt(job=job, now=timezone.now())
    transitions.succeed(job=job, result={"content": []}, usage={}, model_used="claude-haiku-5-5", cost_micros=1)
    job.refresh_from_db()
    assert job.status == "succeeded" and job_json(job)["error"] is None


def test_revoking_a_key_cancels_its_queued_and_waiting_batch_jobs_and_says_how_many(partner, queued_job_row):
    key, _ = partner
    batch = MessageBatch.objects.create(model="claude-haiku-5-5", status="in_progress", upstream_id="msgbatch_1")
    pending = [queued_job_row(key), queued_job_row(key, mode="batch"), queued_job_row(key, mode="batch",
               status="running", batch=batch)]  # fmt: skip
    running = queued_job_row(key, status="running")  # a call in flight cannot be taken back
    done = queued_job_row(key, status="succeeded")
    assert keys.revoke_key(key=key) == 3
    for job in pending:
        job.refresh_from_db()
        assert job.status == "canceled" and job.last_error_type == "key_revoked"
    assert Job.objects.get(pk=running.pk).status == "running" and Job.objects.get(pk=done.pk).status == "succeeded"
    assert keys.revoke_key(key=key) == 0  # again: nothing left to cancel


def test_the_jobs_list_is_one_cursor_page_shape_with_status_and_date_filters(no_worker, partner):
    _, client = partner
    ids = [client.post("/api/v1/jobs", _body(f"job {i}"), format="json").json()["id"] for i in range(3)]
    client.post(f"/api/v1/jobs/{ids[0]}/cancel")
    first = client.get("/api/v1/jobs?limit=2").json()
    assert set(first) == {"data", "has_more", "next", "previous"} and first["has_more"] is True
    rest = client.get(first["next"]).json()
    assert [job["id"] for job in first["data"] + rest["data"]] == ids[::-1] and rest["has_more"] is False
    assert [job["id"] for job in client.get("/api/v1/jobs?status=canceled").json()["data"]] == [ids[0]]
    tomorrow = (timezone.now() + dt.timedelta(days=1)).date().isoformat()
    assert client.get(f"/api/v1/jobs?created_after={tomorrow}").json()["data"] == []
    bad = client.get("/api/v1/jobs?created_after=soon")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "created_after"
    assert client.get("/api/v1/jobs?limit=0").json()["error"]["field"] == "limit"


@pytest.fixture
def queued_job_row(db):
    def make(key, *, mode="queue", status="queued", batch=None):
        return Job.objects.create(
            principal_kind="partner_key",
            principal_id=key.pk,
            user_id=key.owner_id,
            payload={"model": "claude-haiku-5-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
            mode=mode,
            status=status,
            model_requested="auto",
            batch=batch,
            idempotency_key=uuid.uuid4().hex,
        )

    return make
