from __future__ import annotations

import pytest

from claudeapp.chat import markdown
from claudeapp.conversations import services
from claudeapp.conversations.models import Conversation, Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(user_factory):
    return user_factory(username="alice")


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def test_pages_need_a_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_login_page_renders_and_signs_in(client, user_factory):
    user_factory(username="bob", password="a-long-password-1")
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": "bob", "password": "a-long-password-1"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_sidebar_lists_only_my_conversations_newest_first(alice_client, alice, user_factory):
    older = services.create_conversation(owner_id=alice.pk, title="older chat")
    services.create_conversation(owner_id=alice.pk, title="newer chat")
    services.create_conversation(owner_id=user_factory().pk, title="someone else's chat")
    services.rename_conversation(conversation=older, title="older chat")  # bumps updated_at
    body = alice_client.get("/").content.decode()
    assert "someone else" not in body
    assert body.index("older chat") < body.index("newer chat")


def test_someone_elses_conversation_is_a_404_not_a_403(alice_client, user_factory):
    other = services.create_conversation(owner_id=user_factory().pk, title="private")
    assert alice_client.get(f"/c/{other.public_id}/").status_code == 404
    assert alice_client.post(f"/c/{other.public_id}/rename", {"title": "x"}).status_code == 404
    assert alice_client.post(f"/c/{other.public_id}/delete").status_code == 404
    assert alice_client.post(f"/c/{other.public_id}/send", {"content": "hi"}).status_code == 404
    assert alice_client.get("/c/not-a-uuid/").status_code == 404
    assert Conversation.objects.filter(pk=other.pk, title="private").exists()


def test_new_rename_and_delete(alice_client, alice):
    response = alice_client.post("/c/new", {"model": "auto"}, HTTP_ACCEPT="application/json")
    conversation = Conversation.objects.get(owner=alice)
    assert response.json()["send_url"] == f"/c/{conversation.public_id}/send"
    alice_client.post(f"/c/{conversation.public_id}/rename", {"title": "Trip plans"})
    conversation.refresh_from_db()
    assert conversation.title == "Trip plans"
    alice_client.post(f"/c/{conversation.public_id}/delete")
    assert not Conversation.objects.filter(pk=conversation.pk).exists()


def test_forms_and_fetches_are_csrf_protected(alice, client):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    conversation = services.create_conversation(owner_id=alice.pk)
    assert strict.post("/c/new").status_code == 403
    assert strict.post(f"/c/{conversation.public_id}/send", {"content": "hi"}).status_code == 403


def test_send_without_content_names_the_field(alice_client, alice):
    conversation = services.create_conversation(owner_id=alice.pk)
    response = alice_client.post(f"/c/{conversation.public_id}/send", {"content": "  "})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "content"


XSS = '<script>alert(1)</script> <img src=x onerror="alert(2)"> [click](javascript:alert(3))'


def test_markdown_renders_code_lists_and_tables_but_no_active_html():
    html = markdown.render("# T\n\n- a\n- b\n\n| x | y |\n|---|---|\n| 1 | 2 |\n\n```py\nprint(1)\n```\n\n" + XSS)
    assert "<ul>" in html and "<table>" in html and "<pre><code" in html
    assert "<script" not in html and "<img" not in html and "javascript:" not in html.replace("](javascript:", "")
    assert 'href="javascript' not in html


def test_stored_messages_with_xss_payloads_render_inert(alice_client, alice):
    conversation = services.create_conversation(owner_id=alice.pk, title=XSS)
    Message.objects.create(conversation=conversation, role="user", content=XSS)
    Message.objects.create(conversation=conversation, role="assistant", content=XSS, status="complete")
    body = alice_client.get(f"/c/{conversation.public_id}/").content.decode()
    assert "<script>alert(1)" not in body
    assert "<img src=x" not in body
    assert 'href="javascript:' not in body


def test_usage_page_shows_no_limit_without_budgets(alice_client):
    body = alice_client.get("/usage/").content.decode()
    assert "no spending limit" in body


def test_costs_below_a_cent_keep_their_micro_dollars():
    from claudeapp.chat.templatetags.chat_tags import usd

    assert usd(42) == "$0.000042"
    assert usd(12_345) == "$0.0123"
    assert usd(12_340_000) == "$12.34"
    assert usd(None) == "$0.00"


def test_the_composer_is_warned_when_a_turns_worst_case_passes_the_budget(alice_client, alice):
    from io import StringIO

    from django.core.management import call_command

    from billing.models import Budget

    call_command("seed", stdout=StringIO())
    conversation = services.create_conversation(owner_id=alice.pk)
    url = f"/c/{conversation.public_id}/estimate"
    no_budget = alice_client.get(url, {"model": "claude-opus-5-5", "chars": 100}).json()
    assert no_budget["budget_left_micros"] is None and no_budget["over_budget"] is False
    assert no_budget["worst_case_micros"] > 0
    Budget.objects.create(scope="user", scope_id=alice.pk, period="month", limit_micros=50_000)
    opus = alice_client.get(url, {"model": "claude-opus-5-5", "chars": 100}).json()
    haiku = alice_client.get(url, {"model": "claude-haiku-5-5", "chars": 100}).json()
    assert opus["over_budget"] is True and opus["budget_left"] == "$0.0500"
    assert haiku["over_budget"] is False
    assert alice_client.get(url, {"model": "auto"}).json()["model"] == "claude-sonnet-5-5"


def test_the_estimate_names_a_bad_field(alice_client, alice):
    conversation = services.create_conversation(owner_id=alice.pk)
    url = f"/c/{conversation.public_id}/estimate"
    assert alice_client.get(url, {"model": "gpt-4", "chars": 1}).json()["error"]["field"] == "model"
    response = alice_client.get(url, {"chars": "lots"})
    assert response.status_code == 400 and response.json()["error"]["field"] == "chars"
