"""A stateless partner call's routing decision is queued, not inserted on the call (routing/decisionlog.py):
through the live gateway it still lands, on both surfaces, streamed or not, whatever the ending, under
the id the call's request log line names, before that line. A call refused after routing (a budget's 402)
has no line to name it, and its decision lands all the same: the router decided, the console shows it."""

from __future__ import annotations

import httpx
import pytest

from billing.models import Budget
from claudeapp.requestlog.models import RequestLog
from routing.models import RoutingDecision
from tests.chaos.harness import wait_until

MODEL = "claude-haiku-5-5"
FALLBACK_FROM = "claude-sonnet-5-5"  # its chain falls back to another model (seeded model map)
SURFACES = ("/anthropic/v1/messages", "/api/v1/messages")

# ending -> (model asked, emulator marker, HTTP status the caller sees, the log line's status, streamed modes)
ENDINGS = {
    "complete": ("auto", "", 200, "complete", (False, True)),
    "fallback": (FALLBACK_FROM, f"[[fault:529@{FALLBACK_FROM}]]", 200, "complete", (False, True)),
    "failed": (MODEL, "[[fault:400]]", 400, "failed", (False, True)),  # upstream refused: nothing retried
    "cut": (MODEL, "[[fault:stream-cut:2]]", 200, "cut", (True,)),  # upstream's connection dropped after output
    "error": (MODEL, "[[fault:stream-error-after:2]]", 200, "error", (True,)),  # upstream's error event mid-stream
}
CELLS = [
    pytest.param(path, ending, stream, id=f"{path.split('/')[1]}-{ending}-{'stream' if stream else 'json'}")
    for path in SURFACES
    for ending, (*_, modes) in ENDINGS.items()
    for stream in modes
]


def _call(gateway, key, path: str, *, model: str, text: str, stream: bool, request_id: str) -> httpx.Response:
    headers = {"x-api-key": key.raw, "anthropic-version": "2023-06-01", "x-request-id": request_id}
    body = {"model": model, "max_tokens": 32, "stream": stream, "messages": [{"role": "user", "content": text}]}
    with httpx.stream("POST", f"{gateway.url}{path}", json=body, headers=headers, timeout=30) as response:
        response.read()  # a stream is read to its end (or its cut)
    return response


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("path", "ending", "stream"), CELLS)
def test_every_stateless_call_of_the_live_gateway_lands_its_decision_under_the_id_its_log_line_names(
    live_gateway, partner_key_factory, path, ending, stream
):
    model, marker, status, logged, _ = ENDINGS[ending]
    key = partner_key_factory(scopes=["messages"])
    request_id = f"req_decision_{path.count('api')}_{ending}_{int(stream)}"
    response = _call(live_gateway, key, path, model=model, text=f"hi {marker}", stream=stream, request_id=request_id)
    assert response.status_code == status, response.text
    wait_until(lambda: RequestLog.objects.filter(request_id=request_id).exists(), timeout=20, what="the log line")
    line = RequestLog.objects.get(request_id=request_id)
    assert line.status == logged
    decision = RoutingDecision.objects.get(pk=line.route_decision_id)  # written before the line
    assert decision.model_id == response.headers.get("x-route-model", model)  # an error carries no route headers
    assert (decision.principal_kind, decision.principal_id) == ("partner_key", key.pk)
    assert RoutingDecision.objects.filter(principal_kind="partner_key", principal_id=key.pk).count() == 1
    if ending == "fallback":  # routed to one model, answered by the next in its chain
        assert decision.model_id == FALLBACK_FROM != line.model_used
    elif ending == "complete":
        assert line.model_used == decision.model_id


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", SURFACES)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_call_refused_by_its_budget_after_routing_still_lands_its_decision(
    live_gateway, partner_key_factory, path, stream
):
    key = partner_key_factory(scopes=["messages"])
    Budget.objects.create(scope="partner_key", scope_id=key.pk, period="day", limit_micros=1)
    request_id = f"req_refused_{path.count('api')}_{int(stream)}"
    response = _call(live_gateway, key, path, model="auto", text="hi", stream=stream, request_id=request_id)
    assert response.status_code == 402, response.text
    mine = RoutingDecision.objects.filter(principal_kind="partner_key", principal_id=key.pk)
    wait_until(mine.exists, timeout=20, what="the refused call's decision")
    assert mine.count() == 1
    wait_until(lambda: RequestLog.objects.filter(request_id=request_id).exists(), timeout=20, what="the log line")
    line = RequestLog.objects.get(request_id=request_id)
    assert (line.status, line.http_status) == ("refused", 402)
