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
from claudeapp.conversations import background, selectors
from claudeapp.conversations.models import Conversation, Message
from claudeapp.conversations.turns import Delta, Finished, Started, TurnEvent, in_db_thread, stream_turn

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
    retry_of = request.POST.get("retry") or None
    if not content and not retry_of:
        return _error(400, "Write a message first.", "content")
    if len(content) > MAX_PROMPT_CHARS:
        return _error(400, f"Messages are limited to {MAX_PROMPT_CHARS:,} characters.", "content")
    model_choice = (request.POST.get("model") or Conversation.AUTO)[:100]
    conversation, principal = await in_db_thread(_load)(user, public_id)
    if request.POST.get("background"):
        answer = await in_db_thread(background.submit)(
            principal=principal, conversation=conversation, user_text=content, model_choice=model_choice
        )
        return _sse_response(_encode_all(_single(Finished(answer))))
    events = stream_turn(
        principal=principal,
        conversation_id=conversation.pk,
        user_text=content,
        model_choice=model_choice,
        retry_of=retry_of,
    )
    return _sse_response(_encode_all(events))


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
        return _frame("start", {"message_id": event.message_id, "model": event.model, "route": event.route_reason})
    assert isinstance(event, Finished)
    message = event.message
    html = render_to_string("chat/_message.html", {"m": message})
    data = {"message_id": str(message.public_id), "status": message.status, "html": html}
    if event.retry_after is not None:
        data["retry_after"] = event.retry_after
    return _frame(EVENT_BY_STATUS.get(message.status, "done"), data)


def _frame(name: str, data: dict[str, object]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
