"""Instructions: a conversation's system prompt, and the default a person's new conversations start with."""

from __future__ import annotations

from claudeapp.calls import accounting
from claudeapp.conversations.models import ChatPreferences, Conversation

MAX_INSTRUCTIONS_CHARS = 20_000


class InstructionsTooLong(ValueError):
    field = "system_prompt"


def token_count(text: str) -> int:
    """The tokens the instructions add to every turn, counted as the budget hold counts text."""
    return accounting.text_tokens(text) if text.strip() else 0


def clean(text: str) -> str:
    text = (text or "").replace("\r\n", "\n").strip()
    if len(text) > MAX_INSTRUCTIONS_CHARS:
        raise InstructionsTooLong(f"Instructions are limited to {MAX_INSTRUCTIONS_CHARS:,} characters.")
    return text


def default_for(user_id: int) -> str:
    return ChatPreferences.objects.filter(user_id=user_id).values_list("default_system_prompt", flat=True).first() or ""


def set_default(*, user_id: int, text: str) -> ChatPreferences:
    preferences, _ = ChatPreferences.objects.update_or_create(
        user_id=user_id, defaults={"default_system_prompt": clean(text)}
    )
    return preferences


def set_for_conversation(*, conversation: Conversation, text: str) -> Conversation:
    conversation.system_prompt = clean(text)
    conversation.save(update_fields=["system_prompt", "updated_at"])
    return conversation


def system_for(conversation: Conversation) -> str | None:
    """What goes upstream as `system` (None: no instructions)."""
    return conversation.system_prompt.strip() or None
