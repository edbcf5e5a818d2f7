"""Instructions, search, exports and the settings page over HTTP: owner-only (404 otherwise), bad input a
400 naming the field."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from claudeapp.conversations import instructions, services
from claudeapp.conversations.models import Conversation, Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(user_factory):
    return user_factory(username="alice")


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def test_instructions_are_set_per_conversation_with_a_token_count(alice_client, alice):
    conversation = services.create_conversation(owner_id=alice.pk)
    url = f"/c/{conversation.public_id}/instructions"
    response = alice_client.post(url, {"system_prompt": "  Answer in French.  "}, HTTP_ACCEPT="application/json")
    assert response.json() == {"system_prompt": "Answer in French.", "tokens": 6}  # 17 bytes / 3, rounded up
    conversation.refresh_from_db()
    assert conversation.system_prompt == "Answer in French."
    too_long = alice_client.post(url, {"system_prompt": "x" * 20_001}, HTTP_ACCEPT="application/json")
    assert too_long.status_code == 400 and too_long.json()["error"]["field"] == "system_prompt"
    page = alice_client.get(f"/c/{conversation.public_id}/").content.decode()
    assert "Answer in French." in page and "6 tokens" in page


def test_the_default_instructions_are_saved_on_the_settings_page_and_start_new_conversations(alice_client, alice):
    assert alice_client.get("/settings/").status_code == 200
    response = alice_client.post("/settings/", {"default_system_prompt": "Be brief."})
    assert response.status_code == 200 and "Saved." in response.content.decode()
    assert instructions.default_for(alice.pk) == "Be brief."
    alice_client.post("/c/new", {"model": "auto"})
    assert Conversation.objects.get(owner=alice).system_prompt == "Be brief."
    # a partner key's conversation does not take a browser user's default
    assert services.create_conversation(owner_id=alice.pk, partner_key_id=3).system_prompt == ""


def test_search_page_links_each_hit_to_its_message(alice_client, alice):
    conversation = services.create_conversation(owner_id=alice.pk, title="Boats")
    message = Message.objects.create(conversation=conversation, role="user", content="How do sailboats tack?")
    body = alice_client.get("/search/", {"q": "sailboat"}).content.decode()
    assert f'href="/c/{conversation.public_id}/?show={message.public_id}#m-{message.public_id}"' in body
    assert "1 result" in body
    assert alice_client.get("/search/", {"q": "x" * 1001}).json()["error"]["field"] == "q"


def test_exports_are_downloads_for_the_owner_and_a_404_for_anyone_else(alice_client, alice, client, user_factory):
    conversation = services.create_conversation(owner_id=alice.pk, title="Tides")
    Message.objects.create(conversation=conversation, role="user", content="hi")
    as_json = alice_client.get(f"/c/{conversation.public_id}/export.json")
    assert as_json["Content-Type"].startswith("application/json")
    assert as_json["Content-Disposition"].startswith('attachment; filename="tides-')
    assert json.loads(as_json.content)["messages"][0]["content"] == "hi"
    as_md = alice_client.get(f"/c/{conversation.public_id}/export.md")
    assert as_md["Content-Type"].startswith("text/markdown") and as_md.content.startswith(b"# Tides")
    assert alice_client.get(f"/c/{conversation.public_id}/export.exe").status_code == 404
    archive = alice_client.get("/settings/export.zip")
    assert archive["Content-Type"] == "application/zip"
    assert "account.json" in zipfile.ZipFile(io.BytesIO(b"".join(archive.streaming_content))).namelist()

    client.force_login(user_factory(username="mallory"))
    assert client.get(f"/c/{conversation.public_id}/export.json").status_code == 404
    assert client.post(f"/c/{conversation.public_id}/instructions", {"system_prompt": "x"}).status_code == 404
