"""GET /metrics in-process: who may read it, and the figures read at scrape time (jobs, breakers)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests.ops.scraping import parse, value

pytestmark = pytest.mark.django_db

OUTSIDER = "203.0.113.7"  # TEST-NET-3: never inside the default loopback allow-list


def test_loopback_may_read_metrics_by_default(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = parse(response.content.decode())
    assert value(samples, "claudeapp_scrape_ok", collector="jobs") == 1
    assert value(samples, "claudeapp_scrape_ok", collector="breakers") == 1


def test_ipv6_loopback_is_allowed_too(client):
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200


def test_another_network_is_refused_without_a_token(client):
    assert client.get("/metrics", REMOTE_ADDR=OUTSIDER).status_code == 403


def test_the_bearer_token_opens_it_from_anywhere(client, settings):
    settings.METRICS_BEARER_TOKEN = "scrape-secret-123"

    def status(authorization: str | None = None) -> int:
        extra = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
        return client.get("/metrics", REMOTE_ADDR=OUTSIDER, **extra).status_code

    assert status("Bearer scrape-secret-123") == 200
    assert status("bearer scrape-secret-123") == 200  # the scheme is case-insensitive (RFC 7235)
    assert status("Bearer wrong") == 403
    assert status("Basic scrape-secret-123") == 403
    assert status() == 403


def test_an_empty_network_list_means_token_only(client, settings):
    settings.METRICS_BEARER_TOKEN = "scrape-secret-123"
    settings.METRICS_ALLOWED_NETWORKS = []
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret-123").status_code == 200


def test_allowed_networks_are_cidrs(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "2001:db8::/32"]
    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="2001:db8::5").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_only_get_is_answered(client):
    assert client.post("/metrics").status_code == 405


def test_queue_depth_oldest_age_status_counts_and_dead_letters_come_from_the_job_table(client, user_factory):
    from claudeapp.jobs.models import Job

    user = user_factory()
    now = timezone.now()

    def job(status: str, queue: str = "interactive", waited: float = 0.0) -> Job:
        return Job.objects.create(
            principal_kind="user", principal_id=user.pk, user=user, payload={}, model_requested="claude-haiku-5-5",
            status=status, queue=queue, enqueued_at=now - dt.timedelta(seconds=waited),
        )  # fmt: skip

    job("queued", waited=120)
    job("queued", waited=5)
    job("queued", queue="bulk", waited=30)
    job("running")
    job("dead")
    job("dead", queue="bulk")
    job("succeeded")

    samples = parse(client.get("/metrics").content.decode())
    assert value(samples, "claudeapp_jobs_queue_depth", queue="interactive") == 2
    assert value(samples, "claudeapp_jobs_queue_depth", queue="bulk") == 1
    assert 120 <= value(samples, "claudeapp_jobs_oldest_queued_age_seconds", queue="interactive") < 3600
    assert 30 <= value(samples, "claudeapp_jobs_oldest_queued_age_seconds", queue="bulk") < 3600
    assert value(samples, "claudeapp_jobs", queue="interactive", status="running") == 1
    assert value(samples, "claudeapp_jobs", queue="interactive", status="succeeded") == 1
    assert value(samples, "claudeapp_jobs_dead_letter") == 2


def test_the_job_figures_take_one_query(client, django_assert_num_queries):
    from claudeapp.ops.metrics_view import job_families

    with django_assert_num_queries(1):
        list(job_families())


def test_an_open_circuit_shows_as_2_and_a_closed_one_as_0(client, breaker_settings):
    from claudeapp.claude import breaker
    from routing.models import Model

    for order, model_id in enumerate(("claude-haiku-5-5", "claude-sonnet-5-5")):
        Model.objects.create(model_id=model_id, display_name=model_id, family=model_id.split("-")[1], sort_order=order)
        breaker.reset(model_id)
    for _ in range(3):
        breaker.default_breaker.record_failure(breaker.default_breaker.allow("claude-haiku-5-5"))
    try:
        samples = parse(client.get("/metrics").content.decode())
    finally:
        breaker.reset("claude-haiku-5-5")
    assert value(samples, "claudeapp_breaker_state", model="claude-haiku-5-5") == 2
    assert value(samples, "claudeapp_breaker_state", model="claude-sonnet-5-5") == 0
