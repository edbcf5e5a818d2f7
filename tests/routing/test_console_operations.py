"""Operations pages that read: breakers with times, cooldown and failures; the dead-letter queue with each
model's circuit, failed jobs beside dead ones, a warning before requeueing into an open circuit, and
Requeue / Discard on a job's own page."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from claudeapp.claude import breaker
from claudeapp.jobs.models import Job

pytestmark = pytest.mark.django_db
MODEL = "claude-haiku-5-5"


@pytest.fixture
def staff_client(client, user_factory):
    call_command("seed", stdout=StringIO())
    client.force_login(user_factory(username="operator", is_staff=True, is_superuser=True))
    breaker.reset(MODEL)
    yield client
    breaker.reset(MODEL)


def _open_circuit(model_id: str) -> None:
    brk = breaker.Breaker()
    for _ in range(50):
        ticket = brk.allow(model_id)
        if not ticket.allowed:
            return
        brk.record_failure(ticket)


def _job(owner, status: str, **fields) -> Job:
    fields.setdefault("attempts", 5 if status == "dead" else 1)
    return Job.objects.create(
        principal_kind="user", principal_id=owner.pk, user=owner, payload={"model": MODEL, "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}]}, status=status, model_requested=MODEL, **fields,
    )  # fmt: skip


def test_the_breakers_page_reads_as_times_cooldown_and_failures(staff_client):
    _open_circuit(MODEL)
    policy = breaker.policy_for(MODEL)
    body = staff_client.get("/admin/breakers/").content.decode()
    assert "(unix)" not in body and " ago)" in body
    assert f"s of {round(policy.cooldown_seconds)} s" in body
    assert f"{policy.failure_threshold} within {policy.window_seconds:.0f} s opened it" in body


def test_the_dead_letter_queue_lists_failed_jobs_with_their_reason_and_each_models_circuit(staff_client, user_factory):
    alice = user_factory(username="alice")
    dead = _job(alice, "dead", last_error_type="overloaded_error", last_error_status=529)
    failed = _job(alice, "failed", last_error_type="invalid_request_error", last_error_status=400,
                  last_error_message="max_tokens: too large")  # fmt: skip
    _job(alice, "succeeded")
    _open_circuit(MODEL)
    page = staff_client.get("/admin/jobs/deadjob/")
    assert {j.pk for j in page.context["cl"].result_list} == {dead.pk, failed.pk}
    body = page.content.decode()
    assert "400 invalid_request_error: max_tokens: too large" in body and 'class="circuit-open"' in body
    assert ">alice</a>" in body
    assert "Requeue: run again with a fresh set of attempts" in body and "Delete selected" not in body


def test_requeueing_into_an_open_circuit_asks_first(staff_client, user_factory):
    job = _job(user_factory(), "dead", last_error_type="overloaded_error")
    _open_circuit(MODEL)
    data = {"action": "requeue_jobs", "_selected_action": [str(job.pk)]}
    asked = staff_client.post("/admin/jobs/deadjob/", data)
    assert asked.status_code == 200 and b'id="open-circuit-warning"' in asked.content
    job.refresh_from_db()
    assert job.status == "dead"
    staff_client.post("/admin/jobs/deadjob/", {**data, "confirm_open_circuit": "yes"})
    job.refresh_from_db()
    assert job.status == "queued" and job.attempts == 0


def test_a_jobs_page_carries_requeue_and_discard(staff_client, user_factory):
    job = _job(user_factory(), "failed", last_error_type="invalid_request_error", last_error_status=400)
    page = staff_client.get(f"/admin/jobs/job/{job.pk}/change/").content.decode()
    assert 'id="tool-requeue"' in page and 'id="tool-discard"' in page and 'id="job-reason"' in page
    response = staff_client.post(f"/admin/jobs/job/{job.pk}/requeue/")
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == "queued"
    other = _job(user_factory(), "dead")
    staff_client.post(f"/admin/jobs/deadjob/{other.pk}/discard/")
    assert not Job.objects.filter(pk=other.pk).exists()
