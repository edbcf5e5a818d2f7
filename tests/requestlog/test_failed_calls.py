"""A call that ends in an upstream failure leaves a request-log row with the failure's HTTP status, through a
live gateway (uvicorn on the test database, the emulator upstream, its fault markers on every attempt).

The status is what upstream answered (the last model tried when none could answer): the same on every
surface, although /api/v1 answers every call no model could answer with its one 529."""

from __future__ import annotations

import time

import httpx
import pytest

from claudeapp.requestlog.models import RequestLog
from tests.fixtures.live_web import WebServer, database_url, seed_for_web, web_env

pytestmark = pytest.mark.django_db(transaction=True)


def _rows_for(request_ids: set[str], timeout: float = 30.0) -> dict[str, RequestLog]:
    """The rows the web process's flusher thread writes (every REQUEST_LOG_FLUSH_SECONDS), once all are in."""
    deadline = time.monotonic() + timeout
    while True:
        rows = {r.request_id: r for r in RequestLog.objects.filter(request_id__in=request_ids)}
        if len(rows) == len(request_ids) or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_upstream_failures_are_logged_as_failed_with_their_http_status(emulator_reset, user_factory):
    from django.db import connection

    from claudeapp.api import keys

    seed_for_web()
    key, raw = keys.create_key(owner=user_factory(), name="nightly", scopes=["messages"], expires_at=None)
    env = web_env(database=database_url(connection.settings_dict), emulator_url=emulator_reset.url,
                  extra={"REQUEST_LOG_FLUSH_SECONDS": "0.1"})  # fmt: skip
    server = WebServer(env)

    def body(prompt: str, **more) -> dict:
        return {"model": "claude-haiku-5-5", "max_tokens": 16, "messages": [{"role": "user", "content": prompt}],
                **more}  # fmt: skip

    once = {"x-gateway-retries": "0"}  # one upstream attempt, no fallback: the failure is upstream's own error
    calls = {  # request id: (path, body, extra headers, what the caller is answered)
        "req-upstream-500": ("/api/v1/messages", body("[[fault:500]] anyone?"), once, 529),
        "req-anthropic-500": ("/anthropic/v1/messages", body("[[fault:500]] anyone?"), once, 500),
        # Every model of the chain, every retry: no model can answer (the last one tried says why).
        "req-overloaded": ("/api/v1/messages", body("[[fault:529]] anyone?"), {}, 529),
        "req-streamed-529": ("/anthropic/v1/messages", body("[[fault:529]] anyone?", stream=True), {}, 529),
        "req-fine": ("/api/v1/messages", body("Hi"), {}, 200),
    }
    try:
        headers = {"authorization": f"Bearer {raw}", "x-api-key": raw, "anthropic-version": "2023-06-01"}
        with httpx.Client(base_url=server.url, timeout=60, headers=headers) as http:
            for request_id, (path, payload, extra, answered) in calls.items():
                response = http.post(path, json=payload, headers={"x-request-id": request_id, **extra})
                assert response.status_code == answered, (request_id, response.text)
        rows = _rows_for(set(calls))
    finally:
        server.stop()
    found = {rid: (r.status, r.http_status, r.error_type, r.surface) for rid, r in rows.items()}
    assert found == {
        "req-upstream-500": ("failed", 500, "NoModelAvailable", "api"),
        "req-anthropic-500": ("failed", 500, "NoModelAvailable", "anthropic"),
        "req-overloaded": ("failed", 529, "NoModelAvailable", "api"),
        "req-streamed-529": ("failed", 529, "NoModelAvailable", "anthropic"),
        "req-fine": ("complete", 200, "", "api"),
    }, server.log()
    assert {r.principal_id for r in rows.values()} == {key.pk}
    assert all(r.cost_micros == 0 for rid, r in rows.items() if rid != "req-fine")
