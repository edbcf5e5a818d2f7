"""The partner jobs API: 202 + Location, reads scoped to the key, Idempotency-Key with Stripe's semantics."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from claudeapp.api import keys
from claudeapp.jobs.models import Job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.jobs.urls")]


@pytest.fixture
def key_client(user_factory, seeded_models):
    def make(scopes: tuple[str, ...] = ("jobs",)) -> APIClient:
        _, raw = keys.create_key(owner=user_factory(), name="partner", scopes=scopes)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    return make


def _body(text: str = "Hi") -> dict:
    return {"model": "claude-haiku-5-5", "max_tokens": 32, "messages": [{"role": "user", "content": text}]}


def test_post_answers_202_with_location_and_the_worker_finishes_it(worker, key_client):
    client = key_client()
    response = client.post("/api/v1/jobs", _body(), format="json")

    assert response.status_code == 202 and response["Location"] == f"/api/v1/jobs/{response.json()['id']}"
    job_id = response.json()["id"]
    from tests.jobs.conftest import wait_for_status

    wait_for_status([job_id], {"succeeded"})
    read = client.get(response["Location"]).json()
    assert read["status"] == "succeeded" and read["usage"]["output_tokens"] > 0 and read["cost_micros"] > 0


def test_same_idempotency_key_and_body_returns_the_original_job(key_client):
    client = key_client()
    first = client.post("/api/v1/jobs", _body(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post("/api/v1/jobs", _body(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again["Idempotent-Replayed"] == "true"
    assert Job.objects.count() == 1


def test_same_idempotency_key_with_another_body_is_a_409(key_client):
    client = key_client()
    client.post("/api/v1/jobs", _body("one"), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    clash = client.post("/api/v1/jobs", _body("two"), format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert clash.status_code == 409 and clash.json()["error"]["type"] == "idempotency_error"
    assert Job.objects.count() == 1


def test_idempotency_keys_are_scoped_per_key_owner(key_client):
    alice, bob = key_client(), key_client()
    mine = alice.post("/api/v1/jobs", _body(), format="json", HTTP_IDEMPOTENCY_KEY="shared")
    theirs = bob.post("/api/v1/jobs", _body(), format="json", HTTP_IDEMPOTENCY_KEY="shared")

    assert theirs.status_code == 202 and theirs.json()["id"] != mine.json()["id"]


def test_a_key_sees_only_its_own_jobs(no_worker, key_client):
    alice, bob = key_client(), key_client()
    job_id = alice.post("/api/v1/jobs", _body(), format="json").json()["id"]

    assert bob.get(f"/api/v1/jobs/{job_id}").status_code == 404
    assert bob.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 404
    assert bob.get("/api/v1/jobs").json()["data"] == []
    assert [j["id"] for j in alice.get("/api/v1/jobs?status=queued").json()["data"]] == [job_id]
    assert alice.get(f"/api/v1/jobs/{uuid.uuid4()}").status_code == 404


def test_cancel_a_queued_job_then_requeue_it(no_worker, key_client):
    client = key_client()
    job_id = client.post("/api/v1/jobs", _body(), format="json").json()["id"]

    canceled = client.post(f"/api/v1/jobs/{job_id}/cancel")
    again = client.post(f"/api/v1/jobs/{job_id}/cancel")
    requeued = client.post(f"/api/v1/jobs/{job_id}/requeue")

    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert again.status_code == 409
    assert requeued.status_code == 202 and requeued.json()["status"] == "queued"


def test_a_private_webhook_url_is_refused_with_a_400_naming_the_field(key_client, settings):
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = False
    response = key_client().post("/api/v1/jobs", {**_body(), "webhook_url": "http://10.0.0.1/hook"}, format="json")

    assert response.status_code == 400 and response.json()["error"]["field"] == "webhook_url"
    assert Job.objects.count() == 0


def test_an_unknown_model_is_a_404_naming_it_as_on_messages(key_client):
    response = key_client().post("/api/v1/jobs", {**_body(), "model": "claude-nope"}, format="json")
    error = response.json()["error"]
    assert response.status_code == 404 and error["type"] == "not_found_error" and "'claude-nope'" in error["message"]
    assert Job.objects.count() == 0


def test_a_key_without_the_jobs_scope_is_refused(key_client):
    assert key_client(scopes=("messages",)).post("/api/v1/jobs", _body(), format="json").status_code == 403
    assert APIClient().post("/api/v1/jobs", _body(), format="json").status_code == 401


def test_discard_drops_a_canceled_job_but_not_a_queued_one_or_someone_elses(no_worker, key_client):
    client, other = key_client(), key_client()
    job_id = client.post("/api/v1/jobs", _body(), format="json").json()["id"]

    assert client.post(f"/api/v1/jobs/{job_id}/discard").status_code == 409  # still queued
    client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert other.post(f"/api/v1/jobs/{job_id}/discard").status_code == 404
    assert client.post(f"/api/v1/jobs/{job_id}/discard").status_code == 204
    assert not Job.objects.filter(pk=job_id).exists()
