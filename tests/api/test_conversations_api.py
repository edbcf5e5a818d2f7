"""`/api/v1/conversations`: key-scoped CRUD; another key's conversations are 404 everywhere."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from claudeapp.conversations.models import Conversation, Message
from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(partner_key_factory):
    return partner_key_factory(scopes=["conversations"])


@pytest.fixture
def api(key):
    client = APIClient()
    client.credentials(**bearer(key))
    return client


def test_create_sets_the_owner_and_the_partner_key(api, key):
    response = api.post("/api/v1/conversations", {"title": "Support", "model": "auto"}, format="json")
    assert response.status_code == 201, response.content
    conversation = Conversation.objects.get(public_id=response.json()["id"])
    assert (conversation.owner_id, conversation.partner_key_id) == (key.owner_id, key.pk)
    assert response.json()["title"] == "Support"


def test_mass_assignment_of_owner_cost_and_ids_is_ignored(api, key, user_factory):
    stranger = user_factory()
    body = {"title": "Mine", "owner": stranger.pk, "owner_id": stranger.pk, "partner_key_id": 999,
            "id": "00000000-0000-0000-0000-000000000000", "cost_micros": 5, "last_model": "x"}  # fmt: skip
    created = api.post("/api/v1/conversations", body, format="json").json()
    conversation = Conversation.objects.get(public_id=created["id"])
    assert (conversation.owner_id, conversation.partner_key_id, conversation.last_model) == (key.owner_id, key.pk, "")
    renamed = api.patch(f"/api/v1/conversations/{created['id']}", {**body, "title": "Renamed"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["title"] == "Renamed"
    conversation.refresh_from_db()
    assert (conversation.owner_id, conversation.partner_key_id, conversation.title) == (key.owner_id, key.pk, "Renamed")


def test_list_is_this_keys_only_newest_first_with_cursor_pages_and_a_date_filter(api, key, partner_key_factory):
    other = partner_key_factory(owner=key.owner)  # same owner, another key: still not visible
    Conversation.objects.create(owner_id=key.owner_id, partner_key_id=other.pk, title="other key")
    Conversation.objects.create(owner_id=key.owner_id, partner_key_id=None, title="browser")
    for n in range(3):
        Conversation.objects.create(owner_id=key.owner_id, partner_key_id=key.pk, title=f"c{n}")
    page = api.get("/api/v1/conversations", {"limit": 2}).json()
    assert [c["title"] for c in page["data"]] == ["c2", "c1"]
    rest = api.get(page["next"]).json()
    assert [c["title"] for c in rest["data"]] == ["c0"]
    assert api.get("/api/v1/conversations", {"created_after": "2999-01-01"}).json()["data"] == []
    bad = api.get("/api/v1/conversations", {"created_after": "yesterday"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "created_after"


def test_retrieve_shows_the_messages(api, key):
    conversation = Conversation.objects.create(owner_id=key.owner_id, partner_key_id=key.pk)
    Message.objects.create(conversation=conversation, role="user", content="hi")
    Message.objects.create(conversation=conversation, role="assistant", content="hello", cost_micros=7)
    body = api.get(f"/api/v1/conversations/{conversation.public_id}").json()
    assert [(m["role"], m["content"]) for m in body["messages"]] == [("user", "hi"), ("assistant", "hello")]
    assert body["messages"][1]["cost_micros"] == 7


def test_delete_removes_it_with_its_messages(api, key):
    conversation = Conversation.objects.create(owner_id=key.owner_id, partner_key_id=key.pk)
    Message.objects.create(conversation=conversation, role="user", content="hi")
    assert api.delete(f"/api/v1/conversations/{conversation.public_id}").status_code == 204
    assert not Conversation.objects.exists() and not Message.objects.exists()


def test_another_partners_key_gets_404_on_every_object_endpoint(api, key, partner_key_factory):
    conversation = Conversation.objects.create(owner_id=key.owner_id, partner_key_id=key.pk, title="private")
    intruder = APIClient()
    intruder.credentials(**bearer(partner_key_factory(scopes=["conversations"])))
    url = f"/api/v1/conversations/{conversation.public_id}"
    for response in (intruder.get(url), intruder.patch(url, {"title": "pwned"}, format="json"), intruder.delete(url)):
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found_error"
    assert intruder.get("/api/v1/conversations").json()["data"] == []
    conversation.refresh_from_db()
    assert conversation.title == "private"


def test_a_malformed_id_is_a_404_and_a_key_without_the_scope_a_403(api, partner_key_factory):
    assert api.get("/api/v1/conversations/not-a-uuid").status_code == 404
    client = APIClient()
    client.credentials(**bearer(partner_key_factory(scopes=["messages"])))
    assert client.get("/api/v1/conversations").status_code == 403


def test_invalid_titles_are_400s_naming_the_field(api, key):
    conversation = Conversation.objects.create(owner_id=key.owner_id, partner_key_id=key.pk)
    response = api.patch(f"/api/v1/conversations/{conversation.public_id}", {"title": "x" * 201}, format="json")
    assert response.status_code == 400 and response.json()["error"]["field"] == "title"
    assert api.patch(f"/api/v1/conversations/{conversation.public_id}", {}, format="json").status_code == 400
