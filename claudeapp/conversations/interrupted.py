"""A turn whose web process died mid-call (kill -9, a crash): the in-flight reaper bills the call under
the answer's own event key (outcomes.settles_as) and calls `answer_interrupted`, which leaves the answer
failed with what it cost, instead of "streaming" for good: the chat then offers to retry it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError

from claudeapp.conversations.models import Message

_PREFIX = "message:"
MESSAGE = "The gateway restarted before this answer was finished. What Claude had written is billed; retry it."


def answer_interrupted(record: Mapping[str, str], entry: Any) -> None:
    """Registered with calls.inflight.when_interrupted (apps.py). `entry`: the ledger entry the reaper
    billed, or None when nothing was produced upstream (the hold went back)."""
    event_key = record.get("ek") or ""
    if not event_key.startswith(_PREFIX):
        return  # not a turn's call
    try:
        answers = Message.objects.filter(public_id=event_key.removeprefix(_PREFIX), role=Message.Role.ASSISTANT)
        answers.exists()
    except ValidationError:
        return  # not one of our ids
    if entry is not None:  # its cost on the answer, as a settled turn shows it (a stopped one included)
        answers.filter(cost_micros=0).update(
            input_tokens=entry.input_tokens,
            output_tokens=entry.output_tokens,
            cache_write_tokens=entry.cache_write_5m_tokens + entry.cache_write_1h_tokens,
            cache_read_tokens=entry.cache_read_tokens,
            cost_micros=entry.cost_micros,
            model_used=entry.model_id,
            upstream_request_id=entry.upstream_request_id,
            upstream_message_id=entry.upstream_message_id,
        )
    answers.filter(status__in=[Message.Status.PENDING, Message.Status.STREAMING]).update(
        status=Message.Status.FAILED, error_type="interrupted", error_message=MESSAGE
    )
