"""Writes to conversations. The chat turn itself (which calls Claude) lives in turns.py."""

from __future__ import annotations

from django.db import transaction

from claudeapp.conversations.models import Conversation, Message

TITLE_LENGTH = 60


def title_from(text: str) -> str:
    words = " ".join(text.split())
    if len(words) <= TITLE_LENGTH:
        return words or "New chat"
    return words[: TITLE_LENGTH - 1].rsplit(" ", 1)[0] + "…"


def create_conversation(
    *, owner_id: int, model_choice: str = Conversation.AUTO, partner_key_id: int | None = None, title: str = ""
) -> Conversation:
    return Conversation.objects.create(
        owner_id=owner_id, model_choice=model_choice, partner_key_id=partner_key_id, title=title[:200]
    )


def rename_conversation(*, conversation: Conversation, title: str) -> Conversation:
    conversation.title = title.strip()[:200]
    conversation.save(update_fields=["title", "updated_at"])
    return conversation


def set_model_choice(*, conversation: Conversation, model_choice: str) -> Conversation:
    conversation.model_choice = model_choice
    conversation.save(update_fields=["model_choice", "updated_at"])
    return conversation


def delete_conversation(*, conversation: Conversation) -> None:
    conversation.delete()


@transaction.atomic
def start_turn(*, conversation: Conversation, user_text: str, model_requested: str) -> tuple[Message, Message]:
    """Save the user's message and an assistant placeholder before any upstream call.

    Whatever happens upstream afterwards, the user's message is never lost.
    """
    user_message = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, content=user_text, model_requested=model_requested
    )
    answer = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.PENDING,
        model_requested=model_requested,
    )
    fields = ["updated_at"]
    if not conversation.title:
        conversation.title = title_from(user_text)
        fields.append("title")
    conversation.save(update_fields=fields)
    return user_message, answer
