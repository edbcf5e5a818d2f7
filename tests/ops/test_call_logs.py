"""One JSON log line per billed call, from the live server's own log: every field, the request id the
caller sent, the figures the ledger billed, and never the prompt text or the key."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from billing.models import Budget, LedgerEntry

pytestmark = pytest.mark.django_db(transaction=True)

CALL_FIELDS = {
    "time", "level", "logger", "message", "event", "request_id", "surface", "status", "principal_kind",
    "principal_id", "route_decision_id", "route_reason", "model_requested", "model_used", "upstream_request_id",
    "input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens", "cost_micros", "duration_ms",
    "attempts", "latency_ms", "ttft_ms", "error_type",
}  # fmt: skip


def call(server, key, *, request_id: str, secret: str, surface: str = "api", stream: bool = False) -> httpx.Response:
    body = {"model": "auto", "max_tokens": 64, "messages": [{"role": "user", "content": f"Explain {secret} briefly."}]}
    if stream:
        body["stream"] = True
    if surface == "anthropic":
        headers = {"x-api-key": key.raw, "anthropic-version": "2023-06-01", "x-request-id": request_id}
        return httpx.post(f"{server.url}/anthropic/v1/messages", json=body, headers=headers, timeout=30)
    headers = {"authorization": f"Bearer {key.raw}", "x-request-id": request_id}
    return httpx.post(f"{server.url}/api/v1/messages", json=body, headers=headers, timeout=30)


def log_lines(server) -> list[dict]:
    lines = []
    for raw in server.log_path.read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def call_lines(server, request_id: str, timeout: float = 5.0) -> list[dict]:
    """The call's lines once there is one: an `/anthropic` reply (streamed or not) ends before its
    settlement, which writes the line (docs/api.md)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in log_lines(server) if line.get("event") == "call" and line["request_id"] == request_id]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


def test_a_call_writes_one_json_line_with_every_field_and_no_prompt_or_key(metrics_web, partner_key):
    key, request_id, secret = partner_key(), f"req-logs-{uuid.uuid4().hex}", f"zebra-{uuid.uuid4().hex}"
    response = call(metrics_web, key, request_id=request_id, secret=secret)
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == request_id

    [line] = call_lines(metrics_web, request_id)
    assert set(line) >= CALL_FIELDS, CALL_FIELDS - set(line)
    entry = LedgerEntry.objects.get(principal_id=key.pk, kind="message")
    assert line["level"] == "INFO" and line["logger"] == "claudeapp.calls"
    assert line["surface"] == "api" and line["status"] == "complete"
    assert (line["principal_kind"], line["principal_id"]) == (entry.principal_kind, key.pk)
    assert line["model_used"] == entry.model_id and line["model_requested"]
    assert line["route_reason"] and line["route_decision_id"]  # `auto`: the router's stored decision
    assert line["upstream_request_id"] == entry.upstream_request_id != ""
    assert (line["input_tokens"], line["output_tokens"]) == (entry.input_tokens, entry.output_tokens)
    assert line["cost_micros"] == entry.cost_micros > 0
    assert line["duration_ms"] > 0
    whole_log = metrics_web.log_path.read_text(errors="replace")
    assert secret not in whole_log and key.raw not in whole_log and key.raw[-12:] not in whole_log


def test_a_streamed_call_writes_one_line_too(metrics_web, partner_key):
    key, request_id = partner_key(), f"req-logs-{uuid.uuid4().hex}"
    response = call(metrics_web, key, request_id=request_id, secret="tides", surface="anthropic", stream=True)
    assert response.status_code == 200, response.text
    [line] = call_lines(metrics_web, request_id)
    assert line["surface"] == "anthropic" and line["status"] == "complete"
    assert line["ttft_ms"] is not None and line["output_tokens"] > 0


def test_a_refused_call_writes_one_refused_line(metrics_web, partner_key):
    key, request_id = partner_key(), f"req-logs-{uuid.uuid4().hex}"
    Budget.objects.create(scope="partner_key", scope_id=key.pk, period="month", limit_micros=1)
    assert call(metrics_web, key, request_id=request_id, secret="tides").status_code == 402
    [line] = call_lines(metrics_web, request_id)
    assert (line["status"], line["http_status"], line["error_type"]) == ("refused", 402, "BudgetExceeded")
    assert line["principal_id"] == key.pk and line["model_requested"] == "auto"
