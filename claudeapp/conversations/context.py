"""Build the Messages API context for a turn, trimming the oldest turns to fit the window."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from claudeapp.conversations.models import Message

# Close to what Claude's tokenizer gives for English prose; the reservation and
# the trimming only need a safe estimate, billing uses the upstream's counts.
CHARS_PER_TOKEN = 3.5
PER_MESSAGE_OVERHEAD_TOKENS = 4


def estimate_tokens(text: str) -> int:
    return int(len(text) / CHARS_PER_TOKEN) + PER_MESSAGE_OVERHEAD_TOKENS


def estimate_messages_tokens(messages: Iterable[dict[str, object]], system: str = "") -> int:
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


def build_context(
    history: Sequence[Message], *, new_user_text: str, context_window: int, max_tokens: int, system: str = ""
) -> Context:
    """Earlier complete turns plus the new message, dropping the oldest until it fits.

    Failed and queued turns are skipped (they have no answer to show Claude). The
    result always starts with a user turn and alternates roles, as the API requires.
    """
    pairs = _answered_pairs(history)
    budget = context_window - max_tokens
    new_message = {"role": "user", "content": new_user_text}
    trimmed = 0
    while True:
        messages = [m for pair in pairs for m in pair] + [new_message]
        estimate = estimate_messages_tokens(messages, system)
        if estimate <= budget or not pairs:
            return Context(messages=messages, input_tokens_estimate=estimate, trimmed_turns=trimmed)
        pairs = pairs[1:]
        trimmed += 1


def _answered_pairs(history: Sequence[Message]) -> list[tuple[dict[str, object], dict[str, object]]]:
    answered = {Message.Status.COMPLETE, Message.Status.TRUNCATED}
    pairs = []
    pending_user: Message | None = None
    for message in history:
        if message.role == Message.Role.USER:
            pending_user = message
        elif pending_user is not None and message.status in answered and message.content:
            pairs.append(
                (
                    {"role": "user", "content": pending_user.content},
                    {"role": "assistant", "content": message.content},
                )
            )
            pending_user = None
    return pairs
