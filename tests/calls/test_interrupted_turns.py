"""A turn whose web process died mid-call: the in-flight reaper bills it under the answer's own event key
(outcomes.settles_as, carried on the call's record) and the answer is left failed with its cost, not
"streaming" for good. Real Redis and Postgres; the process's death is a record whose heartbeat never was
(the kill -9 itself, through the live chat and API, is tests/chaos/test_faults.py's)."""

from __future__ import annotations

import pytest

from billing.models import LedgerEntry
from claudeapp.calls import inflight
from claudeapp.conversations import interrupted
from claudeapp.conversations.models import Conversation, Message
from tests.calls.test_inflight import start, streamed_fields

pytestmark = pytest.mark.django_db


def _answer(person, *, status: str) -> Message:
    conversation = Conversation.objects.create(owner_id=person.user_id)
    Message.objects.create(conversation=conversation, role="user", content="Tell me a long story")
    return Message.objects.create(conversation=conversation, role="assistant", status=status)


def _turn_fields(answer: Message) -> dict[str, str]:
    """What the turn's record holds: its answer's key and subject (settles_as), then the stream's progress."""
    fields = streamed_fields(out=40)
    fields.update(ek=f"message:{answer.public_id}", subject=str(answer.public_id))
    return fields


@pytest.mark.parametrize("status", [Message.Status.STREAMING, Message.Status.PENDING])
def test_an_orphaned_turn_is_billed_under_its_answer_and_its_answer_is_left_failed(person, budget, status):
    answer = _answer(person, status=status)
    start(person, streamed=True, **_turn_fields(answer))

    assert inflight.reap().billed == 1

    entry = LedgerEntry.objects.get()
    assert (entry.event_key, entry.subject) == (f"message:{answer.public_id}", str(answer.public_id))
    answer.refresh_from_db()
    assert (answer.status, answer.error_type) == (Message.Status.FAILED, "interrupted")
    assert answer.error_message == interrupted.MESSAGE
    assert (answer.cost_micros, answer.input_tokens, answer.output_tokens) == (entry.cost_micros, 321, 40)
    assert answer.cost_micros > 0 and answer.upstream_request_id == "req_01"


def test_a_turn_that_never_reached_its_first_text_is_failed_with_nothing_billed(person, budget):
    answer = _answer(person, status=Message.Status.STREAMING)
    start(person, streamed=True, ek=f"message:{answer.public_id}", subject=str(answer.public_id))

    assert inflight.reap().released == 1

    assert not LedgerEntry.objects.exists()
    answer.refresh_from_db()
    assert (answer.status, answer.error_type, answer.cost_micros) == (Message.Status.FAILED, "interrupted", 0)


def test_a_stopped_answer_keeps_what_its_reader_saw_and_gets_its_cost(person, budget):
    answer = _answer(person, status=Message.Status.TRUNCATED)  # Stop: mark_stopped ran, the bill had not landed
    Message.objects.filter(pk=answer.pk).update(content="Once upon", error_type="stopped")
    start(person, streamed=True, **_turn_fields(answer))

    inflight.reap()

    answer.refresh_from_db()
    assert (answer.status, answer.error_type, answer.content) == (Message.Status.TRUNCATED, "stopped", "Once upon")
    assert answer.cost_micros == LedgerEntry.objects.get().cost_micros > 0


def test_a_turn_its_process_settled_before_dying_is_left_as_settled(person, budget):
    answer = _answer(person, status=Message.Status.COMPLETE)
    Message.objects.filter(pk=answer.pk).update(content="The end.", cost_micros=123)
    start(person, streamed=True, **_turn_fields(answer))

    inflight.reap()

    answer.refresh_from_db()
    assert (answer.status, answer.content, answer.cost_micros) == (Message.Status.COMPLETE, "The end.", 123)


def test_a_stateless_call_s_orphan_touches_no_answer(person, budget):
    answer = _answer(person, status=Message.Status.STREAMING)
    start(person, streamed=True, **streamed_fields())  # ek upstream:msg_01

    assert inflight.reap().billed == 1

    answer.refresh_from_db()
    assert answer.status == Message.Status.STREAMING  # someone else's call: not this answer's business
