"""Full-text search over a person's conversations, and the exports (one conversation, everything)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.db import connection

from billing.models import LedgerEntry
from claudeapp.attachments import services as attachments
from claudeapp.conversations import exports, instructions, search, services
from claudeapp.conversations.models import Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(user_factory):
    return user_factory(username="alice")


def _turn(conversation, question, answer, **answer_fields):
    user = Message.objects.create(conversation=conversation, role="user", content=question)
    reply = Message.objects.create(
        conversation=conversation, role="assistant", content=answer, parent=user, **answer_fields
    )
    return user, reply


def test_search_finds_words_in_messages_and_titles_of_my_conversations_only(alice, user_factory):
    mine = services.create_conversation(owner_id=alice.pk, title="Tide pools of Brittany")
    _, answer = _turn(mine, "What lives in rock pools?", "Anemones and periwinkles cling to the rocks.")
    theirs = services.create_conversation(owner_id=user_factory().pk, title="Anemones for someone else")
    _turn(theirs, "anemones?", "Anemones, yes.")
    api = services.create_conversation(owner_id=alice.pk, partner_key_id=7, title="Partner anemone chat")
    _turn(api, "anemone", "anemone")

    hits = search.search(owner_id=alice.pk, query="anemone")  # stemmed: finds "Anemones"
    assert [(h.conversation.pk, h.message.pk if h.message else None) for h in hits] == [(mine.pk, answer.pk)]
    assert str(hits[0].snippet).startswith("<mark>Anemones</mark> and periwinkles")

    titles = search.search(owner_id=alice.pk, query="brittany")
    assert [(h.conversation.pk, h.message) for h in titles] == [(mine.pk, None)]
    assert search.search(owner_id=alice.pk, query='"rock pools" -periwinkle')[0].message.role == "user"
    assert search.search(owner_id=alice.pk, query="   ") == []


def test_search_snippets_escape_what_was_written(alice):
    conversation = services.create_conversation(owner_id=alice.pk)
    _turn(conversation, "if a < b && <img src=x onerror=alert(1)> lighthouse", "ok")
    snippet = str(search.search(owner_id=alice.pk, query="lighthouse")[0].snippet)
    assert "&gt;" in snippet and "<mark>lighthouse</mark>" in snippet
    assert "<" not in snippet.replace("<mark>", "").replace("</mark>", "")


def test_search_uses_the_gin_indexes(alice):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE indexname IN ('message_content_fts', 'conversation_title_fts')"
        )
        assert sorted(row[0] for row in cursor.fetchall()) == ["conversation_title_fts", "message_content_fts"]
        cursor.execute("SET enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM conversations_message WHERE "
            "to_tsvector('english'::regconfig, COALESCE(content, '')) "
            "@@ websearch_to_tsquery('english'::regconfig, 'x')"
        )
        plan = " ".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET enable_seqscan = on")
    assert "message_content_fts" in plan


def test_a_conversation_exports_as_json_and_markdown_with_model_tokens_and_cost(alice):
    conversation = services.create_conversation(owner_id=alice.pk, title="Tides")
    instructions.set_for_conversation(conversation=conversation, text="Answer like a sailor.")
    question, _ = _turn(
        conversation, "Why are there tides?", "The **moon** pulls.", model_used="claude-haiku-5-5",
        input_tokens=12, output_tokens=34, cost_micros=1234,
    )  # fmt: skip
    attachments.attach(
        attachments=[attachments.store(owner_id=alice.pk, filename="chart.csv", data=b"h,t\n1,2\n")],
        message_id=question.pk,
    )
    data = json.loads(exports.conversation_json(conversation))
    assert data["instructions"] == "Answer like a sailor."
    assert data["totals"] == {"input_tokens": 12, "output_tokens": 34, "cost_micros": 1234, "cost_usd": "0.001234"}
    user, answer = data["messages"]
    assert user["attachments"][0]["filename"] == "chart.csv" and answer["parent_id"] == user["id"]
    assert (answer["model"], answer["input_tokens"], answer["output_tokens"], answer["cost_usd"]) == (
        "claude-haiku-5-5", 12, 34, "0.001234",
    )  # fmt: skip

    markdown = exports.conversation_markdown(conversation)
    assert markdown.startswith("# Tides\n")
    assert "> Answer like a sailor." in markdown
    assert "- Attached: chart.csv (text/csv, 8 bytes)" in markdown
    assert "The **moon** pulls.\n\n*claude-haiku-5-5 · 12 in · 34 out · $0.001234*" in markdown


def test_the_archive_holds_every_conversation_file_setting_and_ledger_line_of_mine_only(alice, user_factory):
    conversation = services.create_conversation(owner_id=alice.pk, title="Kept")
    question, _ = _turn(conversation, "hello", "hi")
    attachments.attach(
        attachments=[attachments.store(owner_id=alice.pk, filename="n.txt", data=b"note")], message_id=question.pk
    )
    instructions.set_default(user_id=alice.pk, text="Be brief.")
    services.create_conversation(owner_id=user_factory().pk, title="Not mine")
    archive = zipfile.ZipFile(io.BytesIO(exports.user_archive(user_id=alice.pk, username="alice").read()))
    names = archive.namelist()
    base = f"conversations/kept-{str(conversation.public_id)[:8]}"
    assert {f"{base}.json", f"{base}.md", "account.json", "usage.json"} <= set(names)
    assert [n for n in names if n.startswith("attachments/")] == [
        f"attachments/{question.attachments.get().public_id}-n.txt"
    ]
    account = json.loads(archive.read("account.json"))
    assert account["default_instructions"] == "Be brief." and len(account["conversations"]) == 1
    assert json.loads(archive.read("usage.json")) == list(LedgerEntry.objects.none())
