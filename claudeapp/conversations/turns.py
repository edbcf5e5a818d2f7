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
    title: str = ""  # the conversation's title, set by its first turn (the sidebar shows it at once)
    question_id: str = ""  # the user message answered (the page can then offer to edit it)


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Finished:
    """The turn ended (complete, truncated, failed or queued); `message` is the saved answer."""

    message: Message
    retry_after: float | None = None
    title: str = ""
    question_id: str = ""


TurnEvent = Started | Delta | Finished


@dataclass(frozen=True)
class TurnRequest:
    """What the person asked for: a new question, or an earlier message to answer again.

    `retry_of` writes a failed answer again in place; `edit_of` asks an edited question and
    `regenerate` writes a new answer to the same question, each as a new branch beside the old one.
    """

    user_text: str = ""
    model_choice: str = "auto"
    retry_of: str | None = None
    edit_of: str | None = None
    regenerate: str | None = None
    think: bool = False
    max_tokens: int = DEFAULT_MAX_TOKENS
    attachment_ids: tuple[str, ...] = ()  # files uploaded from the composer, sent with this question


async def start_turn(*, principal: Principal, conversation_id: int, request: TurnRequest) -> Prepared:
    """Save and admit the turn. Raises InvalidTurn (nothing saved) for a message that is not this
    conversation's; a refused turn comes back with `refused` set."""
    return await in_db_thread(outcomes.prepare)(
        principal=principal,
        conversation_id=conversation_id,
        user_text=request.user_text,
        model_choice=request.model_choice,
        retry_of=request.retry_of,
        edit_of=request.edit_of,
        regenerate=request.regenerate,
        think=request.think,
        max_tokens=request.max_tokens,
        attachment_ids=request.attachment_ids,
    )


async def stream_prepared(prepared: Prepared) -> AsyncIterator[TurnEvent]:
    title = prepared.conversation.title
    question_id = str(prepared.question.public_id) if prepared.question else ""
    if prepared.refused is not None:
        refused = prepared.refused
        yield Finished(refused.message, retry_after=refused.retry_after, title=title, question_id=question_id)
        return
    answer_id = str(prepared.answer.public_id)
    model_id = prepared.admission.decision.model_id
    yield Started(answer_id, model_id, prepared.route_reason, title=title, question_id=question_id)
    async for event in stream_answer(prepared):
        yield event


async def stream_turn(
    *,
    principal: Principal,
    conversation_id: int,
    user_text: str,
    model_choice: str,
    retry_of: str | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> AsyncIterator[TurnEvent]:
    request = TurnRequest(user_text=user_text, model_choice=model_choice, retry_of=retry_of, max_tokens=max_tokens)
    prepared = await start_turn(principal=principal, conversation_id=conversation_id, request=request)
    async for event in stream_prepared(prepared):
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
        settles_as=outcomes.settles_as(prepared),
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
        settles_as=outcomes.settles_as(prepared),
    )
    return done.entry if isinstance(done, Completed) else done.recorded
