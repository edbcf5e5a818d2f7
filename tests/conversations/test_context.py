from __future__ import annotations

import pytest

from claudeapp.conversations import context, services
from claudeapp.conversations.models import Message


@pytest.fixture
def conversation(user_factory):
    return services.create_conversation(owner_id=user_factory().pk)


def _turn(conversation, question, answer, status=Message.Status.COMPLETE):
    Message.objects.create(conversation=conversation, role="user", content=question)
    Message.objects.create(conversation=conversation, role="assistant", content=answer, status=status)


@pytest.mark.django_db
def test_context_keeps_every_turn_when_it_fits(conversation):
    _turn(conversation, "first question", "first answer")
    _turn(conversation, "second question", "second answer")
    ctx = context.build_context(
        list(conversation.messages.all()), new_user_text="third", context_window=10_000, max_tokens=100
    )
    assert [m["content"] for m in ctx.messages] == [
        "first question",
        "first answer",
        "second question",
        "second answer",
        "third",
    ]
    assert ctx.trimmed_turns == 0
    assert [m["role"] for m in ctx.messages] == ["user", "assistant", "user", "assistant", "user"]


@pytest.mark.django_db
def test_context_drops_the_oldest_turns_to_fit_the_window(conversation):
    for n in range(20):
        _turn(conversation, f"question {n} " + "x" * 700, f"answer {n} " + "y" * 700)
    ctx = context.build_context(
        list(conversation.messages.all()), new_user_text="latest", context_window=2_000, max_tokens=500
    )
    assert ctx.trimmed_turns > 0
    assert ctx.input_tokens_estimate <= 1_500
    assert ctx.messages[0]["content"].startswith("question ")
    assert ctx.messages[-2]["content"].startswith("answer 19")
    assert ctx.messages[-1] == {"role": "user", "content": "latest"}


@pytest.mark.django_db
def test_failed_turns_are_left_out_of_the_context(conversation):
    _turn(conversation, "lost question", "", status=Message.Status.FAILED)
    _turn(conversation, "good question", "good answer")
    ctx = context.build_context(
        list(conversation.messages.all()), new_user_text="next", context_window=10_000, max_tokens=100
    )
    assert [m["content"] for m in ctx.messages] == ["good question", "good answer", "next"]


def test_titles_come_from_the_first_words_of_the_first_message():
    assert services.title_from("  Hello   there ") == "Hello there"
    long_title = services.title_from("word " * 40)
    assert len(long_title) <= services.TITLE_LENGTH and long_title.endswith("…")
