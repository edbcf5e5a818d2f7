"""`POST /api/v1/messages`: one turn, stateless or in one of the key's conversations, JSON or SSE.

A plain async view (DRF views are synchronous) under the same key auth and error shape. Errors
before the answer starts (validation, 429, 402, unknown model, nothing can answer) come back with
their status; a stream that breaks after tokens went out ends with an `error` event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from claudeapp.api import conversation_turns, sse
from claudeapp.api.auth import partner_key_required
from claudeapp.api.bodies import json_object
from claudeapp.api.call_errors import answer_call_error
from claudeapp.api.errors import ErrorInfo, response_for
from claudeapp.api.message_bodies import conversation_message, queued_body, stateless_message
from claudeapp.api.message_inputs import MessagesInput
from claudeapp.api.models import Scope
from claudeapp.calls import run
from claudeapp.calls.run import CallSpec, Completed
from claudeapp.claude.results import StreamStart, TextDelta
from claudeapp.conversations.models import Message
from claudeapp.conversations.outcomes import Prepared
from claudeapp.conversations.turns import Delta, Finished, stream_answer


def _error(request: HttpRequest, exc: BaseException) -> JsonResponse:
    return answer_call_error(request, exc)


def _json(body: dict[str, Any], headers: dict[str, str], status: int = 200) -> JsonResponse:
    response = JsonResponse(body, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


@partner_key_required(Scope.MESSAGES)
async def messages(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return response_for(request, ErrorInfo(405, "invalid_request_error", "Method not allowed."))
    try:
        data = MessagesInput(data=json_object(request))
        data.is_valid(raise_exception=True)
        v = data.validated_data
        # Default and cap come from the model's max output, applied once the model is known (admission).
        max_tokens = v.get("max_tokens") or settings.API_DEFAULT_MAX_TOKENS
        if v.get("conversation_id"):
            return await _conversation_turn(request, v, max_tokens)
        return await _stateless_turn(request, v, max_tokens)
    except Exception as exc:
        return _error(request, exc)


# --- stateless ----------------------------------------------------------------------------


async def _stateless_turn(request: HttpRequest, v: dict[str, Any], max_tokens: int) -> HttpResponse:
    messages = v.get("messages") or [{"role": "user", "content": v["content"]}]
    spec = CallSpec(
        messages=messages, max_tokens=max_tokens, system=v.get("system"), route_tags=v.get("metadata") or {}
    )
    admission, spec = await run.admit(
        principal=request.principal, requested_model=v.get("model") or "auto", spec=spec, streamed=v["stream"]
    )
    if not v["stream"]:
        done = await run.complete(admission=admission, spec=spec)
        return _json(stateless_message(done), admission.headers())
    events = run.stream(admission=admission, spec=spec)
    first = await anext(events)  # errors before the first token still get their own status
    return sse.response(_stateless_frames(first, events), admission.headers())


async def _stateless_frames(first: Any, events: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    async with aclosing(events):
        event = first
        while True:
            if isinstance(event, StreamStart):
                yield sse.frame("start", {"id": event.message_id, "conversation_id": None, "model": event.model})
            elif isinstance(event, TextDelta):
                yield sse.frame("delta", {"text": event.text})
            elif isinstance(event, Completed):
                yield _end_frame(event)
                return
            event = await anext(events)


def _end_frame(done: Completed) -> bytes:
    body = stateless_message(done)
    if done.truncated_by is not None:
        error = {"type": getattr(done.truncated_by, "error_type", "api_error"), "message": "The answer was cut short."}
        return sse.frame("error", {"error": error, "message": body})
    return sse.frame("done", body)


# --- in a conversation --------------------------------------------------------------------


async def _conversation_turn(request: HttpRequest, v: dict[str, Any], max_tokens: int) -> HttpResponse:
    prepared = await conversation_turns.aprepare(
        principal=request.principal,
        partner_key_id=request.auth.pk,  # type: ignore[attr-defined]
        conversation_id=v["conversation_id"],
        content=v["content"],
        model=v.get("model"),  # None: the conversation's own model
        max_tokens=max_tokens,
        attachments=v.get("attachments") or [],
    )
    headers = prepared.admission.headers()
    if not v["stream"]:
        answer = await conversation_turns.complete(prepared)
        return _conversation_reply(request, prepared, answer, headers)
    events = stream_answer(prepared)
    first = await anext(events)
    if isinstance(first, Finished) and first.message.status in (Message.Status.QUEUED, Message.Status.FAILED):
        await events.aclose()
        return _conversation_reply(request, prepared, first.message, headers)
    return sse.response(_conversation_frames(prepared, first, events), headers)


def _conversation_reply(
    request: HttpRequest, prepared: Prepared, answer: Message, headers: dict[str, str]
) -> JsonResponse:
    if answer.status == Message.Status.QUEUED:
        return _json(queued_body(answer, prepared.conversation), headers, status=202)
    if answer.status == Message.Status.FAILED:  # the question stays in the conversation, the answer says why
        bad = answer.error_type == "invalid_request_error"
        info = ErrorInfo(400 if bad else 502, answer.error_type if bad else "api_error", answer.error_message)
        info.headers = headers
        return response_for(request, info)
    return _json(conversation_message(answer, prepared.conversation), headers)


async def _conversation_frames(prepared: Prepared, first: Any, events: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    conversation_id = str(prepared.conversation.public_id)
    yield sse.frame(
        "start",
        {"id": str(prepared.answer.public_id), "conversation_id": conversation_id,
         "model": prepared.admission.decision.model_id},
    )  # fmt: skip
    async with aclosing(events):
        event = first
        while True:
            if isinstance(event, Delta):
                yield sse.frame("delta", {"text": event.text})
            elif isinstance(event, Finished):
                body = conversation_message(event.message, prepared.conversation)
                if event.message.status == Message.Status.COMPLETE:
                    yield sse.frame("done", body)
                else:
                    error = {"type": event.message.error_type or "api_error", "message": event.message.error_message}
                    yield sse.frame("error", {"error": error, "message": body})
                return
            event = await anext(events)
