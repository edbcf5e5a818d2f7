"""One chat turn, streamed: save the question, admit, stream the answer, settle, save the answer.

Database work happens in two short steps, before the stream and after it, and the
connection goes back to the pool in between, so an open stream holds none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from functools import partial

from claudeapp.accounts.principals import Principal
from claudeapp.calls import run
from claudeapp.calls.run import Completed, Failed
from claudeapp.claude.results import TextDelta
from claudeapp.conversations import outcomes
from claudeapp.conversations.models import Message
from claudeapp.conversations.outcomes import Prepared
from claudeapp.core.dbthread import in_db_thread

DEFAULT_MAX_TOKENS = 4096


@dataclass(frozen=True)
class Started:
    message_id: str
    model: str
    route_reason: str


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Finished:
    """The turn ended (complete, truncated, failed or queued); `message` is the saved answer."""

    message: Message
    retry_after: float | None = None


TurnEvent = Started | Delta | Finished


async def stream_turn(
    *,
    principal: Principal,
    conversation_id: int,
    user_text: str,
    model_choice: str,
    retry_of: str | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> AsyncIterator[TurnEvent]:
    prepared = await in_db_thread(outcomes.prepare)(
        principal=principal,
        conversation_id=conversation_id,
        user_text=user_text,
        model_choice=model_choice,
        retry_of=retry_of,
        max_tokens=max_tokens,
    )
    if prepared.refused is not None:
        yield Finished(prepared.refused.message, retry_after=prepared.refused.retry_after)
        return
    yield Started(str(prepared.answer.public_id), prepared.admission.decision.model_id, prepared.route_reason)
    async for event in stream_answer(prepared):
        yield event


async def stream_answer(prepared: Prepared) -> AsyncIterator[TurnEvent]:
    """Stream the answer of a prepared (admitted) turn. Its outcome is recorded by the call pipeline
    on every ending, the reader leaving included (Stop keeps the text it saw)."""
    events = run.stream(
        admission=prepared.admission,
        spec=prepared.spec,
        record=partial(outcomes.record, prepared),
        on_error=partial(outcomes.record_failure, prepared),
        on_detach=partial(outcomes.mark_stopped, prepared),
    )
    async with aclosing(events):
        async for event in events:
            if isinstance(event, TextDelta):
                yield Delta(event.text)
            elif isinstance(event, Completed):
                yield Finished(event.entry)
                return
            elif isinstance(event, Failed):
                yield Finished(event.recorded, retry_after=getattr(event.error, "retry_after", None))
                return


async def complete_answer(prepared: Prepared) -> Message:
    """The answer in one piece, saved whatever the ending (complete, queued, failed)."""
    done = await run.complete(
        admission=prepared.admission,
        spec=prepared.spec,
        record=partial(outcomes.record, prepared),
        on_error=partial(outcomes.record_failure, prepared),
    )
    return done.entry if isinstance(done, Completed) else done.recorded
