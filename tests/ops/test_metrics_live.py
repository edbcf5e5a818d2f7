"""Metrics over real HTTP: a call moves the counters by its own figures, refusals count, and every
web process counts (two uvicorn processes writing to one PROMETHEUS_MULTIPROC_DIR, one scrape)."""

from __future__ import annotations

import os
import uuid

import httpx
import pytest

from billing.models import Budget, LedgerEntry, RateLimitPolicy
from tests.api.test_messages_api import fresh_buckets
from tests.ops.scraping import delta, scrape

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "claude-haiku-5-5"


def ask(server, key, *, surface: str = "api", stream: bool = False) -> httpx.Response:
    prompt = [{"role": "user", "content": f"Describe tide pools ({uuid.uuid4().hex[:8]})."}]
    body = {"model": MODEL, "max_tokens": 64, "messages": prompt}
    if stream:
        body["stream"] = True
    if surface == "anthropic":
        headers = {"x-api-key": key.raw, "anthropic-version": "2023-06-01"}
        return httpx.post(f"{server.url}/anthropic/v1/messages", json=body, headers=headers, timeout=30)
    headers = {"authorization": f"Bearer {key.raw}"}
    return httpx.post(f"{server.url}/api/v1/messages", json=body, headers=headers, timeout=30)


def test_a_call_moves_the_request_token_and_cost_counters_by_its_own_figures(metrics_web, partner_key):
    key = partner_key()
    before = scrape(metrics_web.url)
    response = ask(metrics_web, key)
    assert response.status_code == 200, response.text
    after = scrape(metrics_web.url)

    entry = LedgerEntry.objects.get(principal_id=key.pk, kind="message")
    kind, model = entry.principal_kind, entry.model_id
    assert delta(before, after, "claudeapp_requests_total", surface="api", status="complete", model=model) == 1
    tokens = {"principal_kind": kind, "model": model}
    assert delta(before, after, "claudeapp_tokens_total", token_class="input", **tokens) == entry.input_tokens > 0
    assert delta(before, after, "claudeapp_tokens_total", token_class="output", **tokens) == entry.output_tokens > 0
    assert delta(before, after, "claudeapp_cost_micros_total", **tokens) == entry.cost_micros > 0
    assert delta(before, after, "claudeapp_upstream_attempts_total", model=model, outcome="ok") == 1
    assert delta(before, after, "claudeapp_upstream_latency_seconds_count", model=model) == 1


def test_a_streamed_call_counts_once_and_observes_its_time_to_first_token(metrics_web, partner_key):
    key = partner_key()
    before = scrape(metrics_web.url)
    response = ask(metrics_web, key, surface="anthropic", stream=True)
    assert response.status_code == 200, response.text
    after = scrape(metrics_web.url)
    labels = {"surface": "anthropic", "status": "complete", "model": MODEL}
    assert delta(before, after, "claudeapp_requests_total", **labels) == 1
    assert delta(before, after, "claudeapp_upstream_ttft_seconds_count", model=MODEL) == 1


def test_a_429_and_a_402_move_the_refusal_counters_of_their_surface(metrics_web, partner_key):
    limited, broke = partner_key(), partner_key()
    fresh_buckets(RateLimitPolicy.objects.create(scope="partner_key", scope_id=limited.pk, requests_per_minute=1))
    Budget.objects.create(scope="partner_key", scope_id=broke.pk, period="month", limit_micros=1)
    before = scrape(metrics_web.url)

    assert ask(metrics_web, limited, surface="anthropic").status_code == 200
    assert ask(metrics_web, limited, surface="anthropic").status_code == 429
    assert ask(metrics_web, broke, surface="api").status_code == 402
    after = scrape(metrics_web.url)

    assert delta(before, after, "claudeapp_limit_refusals_total", surface="anthropic") == 1
    assert delta(before, after, "claudeapp_budget_refusals_total", surface="api") == 1
    assert delta(before, after, "claudeapp_limit_refusals_total", surface="api") == 0
    assert delta(before, after, "claudeapp_requests_total", surface="anthropic", status="refused", model=MODEL) == 1
    assert delta(before, after, "claudeapp_requests_total", surface="api", status="refused", model=MODEL) == 1


def test_two_web_processes_both_count_in_one_scrape(metrics_web, metrics_dir, partner_key, emulator):
    from django.db import connection

    from tests.fixtures.live_web import WebServer, database_url, web_env

    key = partner_key()
    env = web_env(database=database_url(connection.settings_dict), emulator_url=emulator.url,
                  extra={"PROMETHEUS_MULTIPROC_DIR": metrics_dir, "LOG_FORMAT": "json"})  # fmt: skip
    second = WebServer(env)
    try:
        labels = {"surface": "api", "status": "complete", "model": MODEL}
        before = scrape(metrics_web.url)
        assert ask(metrics_web, key).status_code == 200
        assert ask(second, key).status_code == 200
        assert ask(second, key).status_code == 200
        # Either process's scrape reads every process's files.
        assert delta(before, scrape(metrics_web.url), "claudeapp_requests_total", **labels) == 3
        assert delta(before, scrape(second.url), "claudeapp_requests_total", **labels) == 3
        writers = set(os.listdir(metrics_dir))  # one counter file per process: counter_<pid>.db
        assert {f"counter_{metrics_web.proc.pid}.db", f"counter_{second.proc.pid}.db"} <= writers
    finally:
        second.stop()


def test_a_retried_call_and_its_fallback_move_the_retry_fallback_and_attempt_counters(metrics_web, partner_key):
    key = partner_key()
    prompt = [{"role": "user", "content": f"[[fault:529@claude-opus-5-5]] hello ({uuid.uuid4().hex[:8]})"}]
    body = {"model": "claude-opus-5-5", "max_tokens": 32, "messages": prompt}
    before = scrape(metrics_web.url)
    response = httpx.post(f"{metrics_web.url}/api/v1/messages", json=body,
                          headers={"authorization": f"Bearer {key.raw}"}, timeout=30)  # fmt: skip
    assert response.status_code == 200, response.text
    after = scrape(metrics_web.url)

    failed = delta(
        before, after, "claudeapp_upstream_attempts_total", model="claude-opus-5-5", outcome="overloaded_error"
    )
    assert failed >= 1
    # Every failed attempt on Opus but the last was retried on Opus; the last handed the call to Sonnet.
    assert delta(before, after, "claudeapp_upstream_retries_total", model="claude-opus-5-5") == failed - 1
    fallback = {"model": "claude-opus-5-5", "fallback_model": "claude-sonnet-5-5"}
    assert delta(before, after, "claudeapp_upstream_fallbacks_total", **fallback) == 1
    answered = {"surface": "api", "status": "complete", "model": "claude-sonnet-5-5"}
    assert delta(before, after, "claudeapp_requests_total", **answered) == 1


def test_a_job_run_by_a_celery_worker_counts_in_the_web_processes_scrape(
    metrics_web, json_worker, sole_consumer, metrics_dir, user_factory
):
    from claudeapp.accounts.principals import Principal
    from claudeapp.jobs import services
    from claudeapp.jobs.models import Job
    from tests.jobs.conftest import wait_for_status

    principal = Principal.for_user(user_factory())
    before = scrape(metrics_web.url)
    payload = {"model": MODEL, "max_tokens": 32, "messages": [{"role": "user", "content": f"hi {uuid.uuid4()}"}]}
    job = services.create(principal=principal, payload=payload)
    wait_for_status([job.id], {"succeeded"})
    after = scrape(metrics_web.url)

    entry = LedgerEntry.objects.get(subject=str(job.id))
    assert delta(before, after, "claudeapp_requests_total", surface="jobs", status="complete", model=MODEL) == 1
    outcome = {"mode": "queue", "queue": Job.objects.get(pk=job.id).queue, "outcome": "succeeded"}
    assert delta(before, after, "claudeapp_job_outcomes_total", **outcome) == 1
    tokens = {"model": entry.model_id, "principal_kind": entry.principal_kind}
    assert delta(before, after, "claudeapp_tokens_total", token_class="output", **tokens) == entry.output_tokens > 0
    assert delta(before, after, "claudeapp_cost_micros_total", **tokens) == entry.cost_micros > 0
    assert f"counter_{json_worker.proc.pid}.db" in os.listdir(metrics_dir)  # the worker wrote them
    # Read at scrape time from the job table and Redis: one family each, whoever scrapes.
    for family in ("claudeapp_jobs_queue_depth", "claudeapp_jobs_oldest_queued_age_seconds"):
        assert any(name == family for name, _ in after), family
    assert ("claudeapp_jobs_dead_letter", ()) in after
    assert any(name == "claudeapp_breaker_state" for name, _ in after)
