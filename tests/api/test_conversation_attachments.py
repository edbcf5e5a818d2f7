"""Files in an /api/v1 conversation turn: the same checks and blocks as the chat's, stored with the turn
under the key, carried in later turns, refused with a 400 naming the file's field (nothing kept then)."""

from __future__ import annotations

import base64
import json

import pytest
from django.test import AsyncClient

from billing.models import LedgerEntry, Reservation
from claudeapp.attachments.models import Attachment
from claudeapp.conversations.models import Conversation, Message
from tests.fixtures import files

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("seeded_api")]


@pytest.fixture
def key(partner_key_factory):
    return partner_key_factory(scopes=["messages", "conversations"])


async def _post(key, body):
    client = AsyncClient()
    return await client.post(
        "/api/v1/messages", json.dumps(body), content_type="application/json",
        headers={"authorization": f"Bearer {key.raw}"},
    )  # fmt: skip


def _file(name: str, data: bytes) -> dict[str, str]:
    return {"filename": name, "data": base64.b64encode(data).decode()}


async def test_a_turn_with_files_is_answered_billed_once_and_keeps_them_for_the_next_turn(key, aclose_loop_clients):
    conversation = await Conversation.objects.acreate(owner_id=key.owner_id, partner_key_id=key.pk)
    body = {
        "conversation_id": str(conversation.public_id),
        "content": "What is in these?",
        "model": "claude-haiku-5-5",
        "attachments": [_file("tide.png", files.png()), _file("chart.pdf", files.pdf(2)), _file("n.txt", b"hi")],
    }
    first = await _post(key, body)
    assert first.status_code == 200, first.content
    assert first.json()["usage"]["input_tokens"] >= 1_200 + 1_500  # the emulator counted the image and the PDF
    stored = [a async for a in Attachment.objects.order_by("created_at", "id")]
    assert [(a.filename, a.kind, a.partner_key_id) for a in stored] == [
        ("tide.png", "image", key.pk), ("chart.pdf", "document", key.pk), ("n.txt", "text", key.pk),
    ]  # fmt: skip
    question = await Message.objects.aget(conversation=conversation, role="user")
    assert all(a.message_id == question.pk for a in stored)

    detail = await AsyncClient().get(
        f"/api/v1/conversations/{conversation.public_id}", headers={"authorization": f"Bearer {key.raw}"}
    )
    user_turn = detail.json()["messages"][0]
    assert [(f["filename"], f["kind"], f["pages"]) for f in user_turn["attachments"]] == [
        ("tide.png", "image", None), ("chart.pdf", "document", 2), ("n.txt", "text", None),
    ]  # fmt: skip

    second = await _post(key, {"conversation_id": str(conversation.public_id), "content": "And the second page?"})
    assert second.json()["usage"]["input_tokens"] >= 1_200 + 1_500  # history carries the files
    assert await LedgerEntry.objects.filter(kind="message").acount() == 2
    assert not await Reservation.objects.aexists()


@pytest.mark.parametrize(
    ("attachments", "field"),
    [
        ([{"filename": "x.png", "data": "not base64!"}], "attachments.0.data"),
        ([_file("ok.txt", b"fine"), _file("tool.exe", b"MZ\x90\x00")], "attachments.1.data"),
        ([_file(f"{n}.txt", b"x") for n in range(6)], "attachments"),
    ],
)
async def test_bad_files_are_a_400_naming_the_field_and_nothing_is_kept(key, attachments, field, aclose_loop_clients):
    conversation = await Conversation.objects.acreate(owner_id=key.owner_id, partner_key_id=key.pk)
    response = await _post(
        key, {"conversation_id": str(conversation.public_id), "content": "see", "attachments": attachments}
    )
    assert response.status_code == 400, response.content
    assert field in json.dumps(response.json())
    assert not await Attachment.objects.aexists() and not await Message.objects.aexists()


async def test_files_without_a_conversation_are_refused(key, aclose_loop_clients):
    response = await _post(key, {"content": "see", "attachments": [_file("a.txt", b"a")]})
    assert response.status_code == 400 and "attachments" in json.dumps(response.json())
