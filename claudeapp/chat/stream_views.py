"""The chat send endpoint: an async view that streams the answer as server-sent events.

Plain `async def` (DRF views are synchronous); the ORM runs in short thread hops
before and after the stream, never while tokens flow.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.template.loader import render_to_string

from claudeapp.accounts.principals import Principal
from claudeapp.attachments.errors import AttachmentRefused
from claudeapp.calls import observe
from claudeapp.conversations import background, selectors
from claudeapp.conversations.errors import InvalidTurn
from claudeapp.conversations.models import Conversation, Message
from claudeapp.conversations.turns import (
    Delta,
    Finished,
    Started,
    TurnEvent,
    TurnRequest,
    in_db_thread,
    start_turn,
    stream_prepared,
)
from claudeapp.core import unavailable

MAX_PROMPT_CHARS = 200_000
EVENT_BY_STATUS = {
    Message.Status.COMPLETE: "done",
    Message.Status.TRUNCATED: "truncated",
    Message.Status.FAILED: "failed",
    Message.Status.QUEUED: "queued",
}


def _error(status: int, message: str, field: str | None = None, type_: str = "invalid_request_error") -> JsonResponse:
    return JsonResponse({"error": {"type": type_, "message": message, "field": field}}, status=status)


async def send(request: HttpRequest, public_id: str) -> HttpResponse:
    if request.method != "POST":
        return _error(405, "Use POST.", type_="method_not_allowed")
    user = await request.auser()
    if not user.is_authenticated:
        return _error(401, "Sign in first.", type_="authentication_error")
    content = (request.POST.get("content") or "").strip()
    turn = TurnRequest(
        user_text=content,
        model_choice=(request.POST.get("model") or Conversation.AUTO)[:100],
        retry_of=request.POST.get("retry") or None,
        edit_of=request.POST.get("edit_of") or None,
        regenerate=request.POST.get("regenerate") or None,
        think=bool(request.POST.get("think")),
        attachment_ids=tuple(i for i in (request.POST.get("attachments") or "").split(",") if i.strip()),
    )
    if not content and not (turn.retry_of or turn.regenerate):
        return _error(400, "Write a message first.", "content")
    if len(content) > MAX_PROMPT_CHARS:
        return _error(400, f"Messages are limited to {MAX_PROMPT_CHARS:,} characters.", "content")
    conversation, principal = await in_db_thread(_load)(user, public_id)
    if request.POST.get("background"):
        try:
            answer = await in_db_thread(background.submit)(
                principal=principal, conversation=conversation, user_text=content, model_choice=turn.model_choice,
                attachment_ids=turn.attachment_ids,
            )  # fmt: skip
        except AttachmentRefused as exc:
            return JsonResponse(exc.body(), status=exc.status)
        return _sse_response(_encode_all(_single(Finished(answer, title=conversation.title))))
    try:
        prepared = await start_turn(principal=principal, conversation_id=conversation.pk, request=turn)
    except InvalidTurn as exc:
        return _error(400, exc.message, exc.field)
    except AttachmentRefused as exc:  # not the sender's own unsent files, or too many: nothing was saved
        return JsonResponse(exc.body(), status=exc.status)
    except Exception as exc:  # the page the browser gets (core/unavailable.py): 503 for the database, else a 500
        observe.not_admitted(exc, http_status=unavailable.page_status(exc))
        raise
    return _sse_response(_encode_all(stream_prepared(prepared)))


def _load(user, public_id: str) -> tuple[Conversation, Principal]:  # type: ignore[no-untyped-def]
    conversation = selectors.get_conversation(owner_id=user.pk, public_id=public_id)
    return conversation, Principal.for_user(user)


def _sse_response(body: AsyncIterator[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(body, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # tell nginx-style proxies not to buffer the stream
    return response


async def _single(event: TurnEvent) -> AsyncIterator[TurnEvent]:
    yield event


async def _encode_all(events: AsyncIterator[TurnEvent]) -> AsyncIterator[bytes]:
    async for event in events:
        yield encode(event)


def encode(event: TurnEvent) -> bytes:
    if isinstance(event, Delta):
        return _frame("delta", {"text": event.text})
    if isinstance(event, Started):
        start = {"message_id": event.message_id, "model": event.model, "route": event.route_reason}
        return _frame("start", start | {"title": event.title, "question_id": event.question_id})
    assert isinstance(event, Finished)
    message = event.message
    html = render_to_string("chat/_message.html", {"m": message})
    data = {"message_id": str(message.public_id), "status": message.status, "html": html}
    if event.title:
        data["title"] = event.title
    if event.question_id:
        data["question_id"] = event.question_id
    if event.retry_after is not None:
        data["retry_after"] = event.retry_after
    return _frame(EVENT_BY_STATUS.get(message.status, "done"), data)


def _frame(name: str, data: dict[str, object]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
