"""A turn's files and the conversation's instructions reach upstream through the one billed-call pipeline:
image, document and text blocks (and `system`) in the request, carried again in later turns' context,
counted by count_tokens for the hold, and billed once per answer."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from billing.models import LedgerEntry, Reservation
from claudeapp.accounts.principals import Principal
from claudeapp.attachments import services as attachments
from claudeapp.attachments.errors import AttachmentRefused
from claudeapp.attachments.models import Attachment
from claudeapp.calls import settlement
from claudeapp.conversations import background, instructions, outcomes, services
from claudeapp.conversations.models import Message
from claudeapp.jobs.models import Job
from tests.fixtures import files


def _staged(user, name, data):
    return str(attachments.store(owner_id=user.pk, filename=name, data=data).public_id)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("gateway_settings")
def test_files_and_instructions_go_upstream_as_blocks_and_system_and_come_again_next_turn(chat_user):
    conversation = services.create_conversation(owner_id=chat_user.pk)
    instructions.set_for_conversation(conversation=conversation, text="Answer like a sailor.")
    ids = [_staged(chat_user, "tide.png", files.png()), _staged(chat_user, "chart.pdf", files.pdf(2)),
           _staged(chat_user, "notes.md", b"# Low tide\nat noon")]  # fmt: skip
    principal = Principal.for_user(chat_user)
    prepared = outcomes.prepare(
        principal=principal, conversation_id=conversation.pk, user_text="What do these show?",
        model_choice="claude-haiku-5-5", retry_of=None, max_tokens=256, attachment_ids=ids,
    )  # fmt: skip
    try:
        (sent,) = prepared.spec.messages
        assert [b["type"] for b in sent["content"]] == ["image", "document", "text", "text"]
        assert sent["content"][0]["source"]["media_type"] == "image/png"
        assert sent["content"][1]["source"]["media_type"] == "application/pdf"
        assert sent["content"][2]["text"] == '<file name="notes.md">\n# Low tide\nat noon\n</file>'
        assert sent["content"][3] == {"type": "text", "text": "What do these show?"}
        assert prepared.spec.system == "Answer like a sailor."
        # the image and the PDF make the local bound a guess: the hold is upstream's count (emulator:
        # 1,200 per image, 1,500 per document), not the 4,800-per-image fallback
        assert 1_200 + 1_500 < prepared.admission.input_tokens < 4_800
        question = Message.objects.get(conversation=conversation, role="user")
        assert list(question.attachments.values_list("filename", flat=True)) == ["tide.png", "chart.pdf", "notes.md"]
    finally:
        settlement.abandon(admission=prepared.admission)
    Message.objects.filter(pk=prepared.answer.pk).update(status=Message.Status.COMPLETE, content="Tides, aye.")

    later = outcomes.prepare(
        principal=principal, conversation_id=conversation.pk, user_text="And tomorrow?",
        model_choice="claude-haiku-5-5", retry_of=None, max_tokens=256,
    )  # fmt: skip
    try:
        first, answer, new = later.spec.messages
        assert [b["type"] for b in first["content"]] == ["image", "document", "text", "text"]
        assert (answer["content"], new["content"]) == ("Tides, aye.", "And tomorrow?")
    finally:
        settlement.abandon(admission=later.admission)
    assert not Reservation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_someone_elses_or_an_already_sent_file_is_refused_before_anything_is_saved(chat_user, user_factory):
    conversation = services.create_conversation(owner_id=chat_user.pk)
    theirs = _staged(user_factory(username="other"), "x.txt", b"secret")
    with pytest.raises(AttachmentRefused):
        outcomes.prepare(
            principal=Principal.for_user(chat_user), conversation_id=conversation.pk, user_text="hi",
            model_choice="auto", retry_of=None, max_tokens=64, attachment_ids=[theirs],
        )  # fmt: skip
    assert not Message.objects.exists()
    assert Attachment.objects.get(public_id=theirs).message_id is None


@pytest.mark.django_db(transaction=True)
def test_a_background_turn_carries_its_files_and_instructions_into_the_job(chat_user):
    conversation = services.create_conversation(owner_id=chat_user.pk)
    instructions.set_for_conversation(conversation=conversation, text="Be brief.")
    answer = background.submit(
        principal=Principal.for_user(chat_user), conversation=conversation, user_text="Describe it",
        model_choice="claude-haiku-5-5", attachment_ids=[_staged(chat_user, "a.gif", files.gif())],
    )  # fmt: skip
    job = Job.objects.get(pk=answer.job_id)
    assert job.payload["system"] == "Be brief."
    assert [b["type"] for b in job.payload["messages"][-1]["content"]] == ["image", "text"]


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("gateway_settings")
async def test_the_send_endpoint_sends_files_and_bills_the_answer_once(chat_user, aclose_loop_clients):
    client = AsyncClient()
    await client.aforce_login(chat_user)
    conversation = await _create(chat_user)
    image = await _astaged(chat_user, "tide.png", files.png())
    response = await client.post(
        f"/c/{conversation.public_id}/send",
        {"content": "What is this?", "model": "claude-haiku-5-5", "attachments": image},
    )
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()
    assert "event: done" in body, body
    answer = await Message.objects.aget(conversation=conversation, role="assistant")
    assert answer.input_tokens >= 1_200  # the emulator counted the image
    entries = [e async for e in LedgerEntry.objects.filter(kind="message")]
    assert [e.event_key for e in entries] == [f"message:{answer.public_id}"]
    assert entries[0].input_tokens == answer.input_tokens

    again = await client.post(f"/c/{conversation.public_id}/send", {"content": "again", "attachments": image})
    assert again.status_code == 400  # sent already: not the sender's unsent file
    assert json.loads(again.content)["error"]["field"] == "attachments"


async def _create(user):
    return await sync_to_async(services.create_conversation)(owner_id=user.pk)


async def _astaged(user, name, data):
    return await sync_to_async(_staged)(user, name, data)
