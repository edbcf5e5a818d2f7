"""A stateless partner call's routing decision is queued, not inserted on the call (routing/decisionlog.py):
through the live gateway it still lands, on both surfaces, streamed or not, under the id the call's
request log line names, before that line."""

from __future__ import annotations

import httpx
import pytest

from claudeapp.requestlog.models import RequestLog
from routing.models import RoutingDecision
from tests.chaos.harness import wait_until


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/anthropic/v1/messages", "/api/v1/messages"])
@pytest.mark.parametrize("stream", [False, True])
def test_every_stateless_call_of_the_live_gateway_lands_its_decision_under_the_id_its_log_line_names(
    live_gateway, partner_key_factory, path, stream
):
    key = partner_key_factory(scopes=["messages"])
    request_id = f"req_decision_{path.count('api')}_{int(stream)}"
    headers = {"x-api-key": key.raw, "anthropic-version": "2023-06-01", "x-request-id": request_id}
    body = {"model": "auto", "max_tokens": 32, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    response = httpx.post(f"{live_gateway.url}{path}", json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    wait_until(lambda: RequestLog.objects.filter(request_id=request_id).exists(), timeout=20, what="the log line")
    line = RequestLog.objects.get(request_id=request_id)
    decision = RoutingDecision.objects.get(pk=line.route_decision_id)  # written before the line
    assert decision.model_id == response.headers["x-route-model"] == line.model_used
    assert (decision.principal_kind, decision.principal_id) == ("partner_key", key.pk)
