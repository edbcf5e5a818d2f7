"""Build the Messages API context for a turn, trimming the oldest turns to fit the window.

A user turn sent with files carries them again in every later turn's context (image, document and
text blocks before the question's text), as Claude has no memory of earlier requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import prefetch_related_objects

from claudeapp.attachments import blocks
from claudeapp.attachments.models import Attachment
from claudeapp.conversations.models import Message
from claudeapp.core import tokensize

# The trimming needs a safe estimate (the gateway's one, core.tokensize: the one the hold is taken
# with, so a context that fits here fits the hold); billing uses the upstream's counts.
PER_MESSAGE_OVERHEAD_TOKENS = 4


def estimate_tokens(text: str) -> int:
    return tokensize.text_tokens(text) + PER_MESSAGE_OVERHEAD_TOKENS


def estimate_messages_tokens(messages: Iterable[dict[str, object]], system: str = "") -> int:
    """Text turns only: for turns with files use `Turn.tokens` (a file's estimate is kept with it)."""
    total = estimate_tokens(system) if system else 0
    for message in messages:
        content = message["content"]
        total += estimate_tokens(content if isinstance(content, str) else str(content))
    return total


@dataclass(frozen=True)
class Context:
    messages: list[dict[str, object]]
    input_tokens_estimate: int
    trimmed_turns: int


@dataclass(frozen=True)
class Turn:
    messages: tuple[dict[str, Any], ...]
    tokens: int


def user_turn(text: str, attachments: Sequence[Attachment] = ()) -> Turn:
    tokens = estimate_tokens(text) + sum(a.tokens_estimate for a in attachments)
    return Turn(({"role": "user", "content": blocks.user_content(text, attachments)},), tokens)


def build_context(
    history: Sequence[Message],
    *,
    new_user_text: str,
    context_window: int,
    max_tokens: int,
    system: str = "",
    new_attachments: Sequence[Attachment] = (),
) -> Context:
    """Earlier complete turns plus the new message, dropping the oldest until it fits.

    Failed and queued turns are skipped (they have no answer to show Claude). The
    result always starts with a user turn and alternates roles, as the API requires.
    """
    pairs = _answered_pairs(history)
    budget = context_window - max_tokens
    new_turn = user_turn(new_user_text, new_attachments)
    fixed = new_turn.tokens + (estimate_tokens(system) if system else 0)
    trimmed = 0
    while True:
        estimate = fixed + sum(pair.tokens for pair in pairs)
        if estimate <= budget or not pairs:
            messages = [m for pair in pairs for m in pair.messages] + list(new_turn.messages)
            return Context(messages=messages, input_tokens_estimate=estimate, trimmed_turns=trimmed)
        pairs = pairs[1:]
        trimmed += 1


def _answered_pairs(history: Sequence[Message]) -> list[Turn]:
    answered = {Message.Status.COMPLETE, Message.Status.TRUNCATED}
    _load_attachments(history)
    pairs = []
    pending_user: Message | None = None
    for message in history:
        if message.role == Message.Role.USER:
            pending_user = message
        elif pending_user is not None and message.status in answered and message.content:
            question = user_turn(pending_user.content, _attachments_of(pending_user))
            answer = {"role": "assistant", "content": message.content}
            pairs.append(Turn((*question.messages, answer), question.tokens + estimate_tokens(message.content)))
            pending_user = None
    return pairs


def _load_attachments(history: Sequence[Message]) -> None:
    """One query for every earlier question's files (they go upstream again with the context)."""
    saved = [m for m in history if m.role == Message.Role.USER and m.pk is not None]
    if saved:
        prefetch_related_objects(saved, "attachments")


def _attachments_of(message: Message) -> list[Attachment]:
    return list(message.attachments.all()) if message.pk is not None else []
