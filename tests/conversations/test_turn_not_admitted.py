"""A chat turn the gateway fails to admit on its own account (the database gone, a bug) is a request log row,
failed, with the status the browser got, as on the partner surfaces (tests/api/test_not_admitted.py); an
unknown model is the sender's mistake and leaves none. The failure is injected into admission: nothing in
a working product raises these on purpose."""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError, ProgrammingError
from django.test import AsyncClient

from claudeapp.calls import admission
from claudeapp.conversations import services
from routing.errors import UnknownModel
from tests.fixtures.requestlog import arows_for

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("gateway_settings")]

FAILURES = {  # what admission raises: the status the browser gets, and the row it leaves (None: no row)
    "a bug": (ProgrammingError("relation does not exist"), 500, ("failed", 500, "ProgrammingError")),
    "the database gone": (OperationalError("connection refused"), 503, ("failed", 503, "OperationalError")),
    "an unknown model": (UnknownModel("claude-nope"), None, None),
}


@pytest.mark.parametrize("failure", FAILURES)
async def test_a_turn_failed_at_admission_is_logged_only_when_the_gateway_is_at_fault(
    failure, chat_user, monkeypatch, aclose_loop_clients
):
    error, status, row = FAILURES[failure]

    def broken(**_):
        raise error

    monkeypatch.setattr(admission, "admit", broken)
    conversation = await sync_to_async(services.create_conversation)(owner_id=chat_user.pk)
    client = AsyncClient(raise_request_exception=False)
    await sync_to_async(client.force_login)(chat_user)
    request_id = f"req_{uuid.uuid4().hex[:12]}"
    response = await client.post(f"/c/{conversation.public_id}/send", {"content": "hi", "model": "claude-haiku-5-5"},
                                 headers={"x-request-id": request_id})  # fmt: skip

    if status is not None:
        assert response.status_code == status, response.content
    logged = await arows_for(request_id, expected=1 if row else 0)
    assert [(r.status, r.http_status, r.error_type) for r in logged] == ([row] if row else [])
    if row:
        assert (logged[0].principal_kind, logged[0].principal_id, logged[0].surface) == ("user", chat_user.pk, "chat")
