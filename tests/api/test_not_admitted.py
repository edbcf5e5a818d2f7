"""A call the gateway fails to admit on its own account (a 5xx before any upstream call) is a request log
row, failed, with the status the caller got; a caller's mistake (a 4xx) is not a call and leaves none.

In process (AsyncClient) on every partner call surface. The failure is injected: admission is replaced by
one that raises what a broken deployment raises (a ProgrammingError behind a misconfigured pooler, the
database gone), since nothing in a working product raises them on purpose.
"""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import OperationalError, ProgrammingError
from django.test import AsyncClient

from claudeapp.calls import admission
from claudeapp.conversations.models import Conversation
from routing.errors import UnknownModel
from tests.fixtures.requestlog import arows_for

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("seeded_api")]

SURFACES = ("anthropic", "api stateless", "api conversation")
FAILURES = {  # what admission raises: the status the caller gets, and the row it leaves (None: no row)
    "a bug": (ProgrammingError("relation does not exist"), 500, ("failed", 500, "ProgrammingError")),
    "the database gone": (OperationalError("connection refused"), 503, ("failed", 503, "OperationalError")),
    "an unknown model": (UnknownModel("claude-nope"), 404, None),
}


@pytest.fixture
def key(partner_key_factory):
    return partner_key_factory(scopes=["messages", "conversations"])


async def _call(surface: str, key, request_id: str):
    client = AsyncClient()
    if surface == "anthropic":
        body = {"model": "claude-haiku-5-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
        headers = {"x-api-key": key.raw, "anthropic-version": "2023-06-01", "x-request-id": request_id}
        return await client.post("/anthropic/v1/messages", json.dumps(body), "application/json", headers=headers)
    body = {"model": "claude-haiku-5-5", "max_tokens": 16, "content": "hi"}
    if surface == "api conversation":
        conversation = await Conversation.objects.acreate(owner_id=key.owner_id, partner_key_id=key.pk)
        body["conversation_id"] = str(conversation.public_id)
    headers = {"authorization": f"Bearer {key.raw}", "x-request-id": request_id}
    return await client.post("/api/v1/messages", json.dumps(body), "application/json", headers=headers)


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("surface", SURFACES)
async def test_a_call_failed_at_admission_is_logged_only_when_the_gateway_is_at_fault(
    surface, failure, key, monkeypatch, aclose_loop_clients
):
    error, status, row = FAILURES[failure]

    def broken(**_):
        raise error

    monkeypatch.setattr(admission, "admit", broken)
    request_id = f"req_{uuid.uuid4().hex[:12]}"
    response = await _call(surface, key, request_id)

    assert response.status_code == status, response.content
    logged_rows = await arows_for(request_id, expected=1 if row else 0)
    written = [(r.status, r.http_status, r.error_type) for r in logged_rows]
    assert written == ([row] if row else []), written
    if row:
        (logged,) = logged_rows
        assert (logged.principal_kind, logged.principal_id) == ("partner_key", key.pk)
        assert logged.model_requested == "claude-haiku-5-5" and logged.cost_micros == 0
        assert logged.surface == surface.split()[0]
