"""One chat turn, streamed: save the question, admit, stream the answer, settle, save the answer.

Database work happens in two short steps, before the stream and after it, and the
connection goes back to the pool in between, so an open stream holds none.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection

from claudeapp.accounts.principals import Principal
from claudeapp.claude import gateway
from claudeapp.claude.errors import GatewayError, NoModelAvailable, UpstreamError
from claudeapp.claude.results import StreamEnd, StreamStart, StreamTruncated, TextDelta
from claudeapp.conversations import outcomes
from claudeapp.conversations.models import Message
from claudeapp.conversations.outcomes import Prepared

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


def in_db_thread(func):  # type: ignore[no-untyped-def]
    """Run ORM work off the event loop and hand the connection back to the pool afterwards."""

    def run(*args, **kwargs):  # type: ignore[no-untyped-def]
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            connection.close()

    return sync_to_async(run, thread_sensitive=False)


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
    """Stream the answer of a prepared (admitted) turn and record its outcome, whatever happens."""
    received: list[str] = []
    finished = False
    try:
        async for event in gateway.astream(
            models=prepared.admission.models,
            messages=prepared.context.messages,
            max_tokens=prepared.max_tokens,
            metadata={"user_id": prepared.principal.key},
        ):
            if isinstance(event, TextDelta):
                received.append(event.text)
                yield Delta(event.text)
            elif isinstance(event, StreamEnd | StreamTruncated):
                message = await _save(outcomes.finish, prepared=prepared, event=event)
                finished = True
                yield Finished(message)
            elif isinstance(event, StreamStart):
                continue
    except NoModelAvailable as exc:
        message = await _save(outcomes.queue_for_later, prepared=prepared, error=exc)
        finished = True
        yield Finished(message, retry_after=exc.retry_after)
    except (UpstreamError, GatewayError) as exc:
        message = await _save(outcomes.fail, prepared=prepared, error=exc)
        finished = True
        yield Finished(message)
    finally:
        if not finished:  # the client went away (Stop button, closed tab): keep what it saw
            await _save(outcomes.stop, prepared=prepared, partial_text="".join(received))


async def _save(step, **kwargs):  # type: ignore[no-untyped-def]
    # Shielded: a client disconnect cancels the stream, but the bookkeeping must still land.
    return await asyncio.shield(in_db_thread(step)(**kwargs))
