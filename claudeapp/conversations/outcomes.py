"""The synchronous steps of a chat turn: prepare before the stream, record the outcome after it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from billing.errors import BillingError, BudgetExceeded, PriceMissing, RateLimited
from claudeapp.accounts.principals import Principal
from claudeapp.calls import run, settlement
from claudeapp.calls.admission import Admission
from claudeapp.calls.errors import UpstreamBusy
from claudeapp.calls.run import CallSpec, Ending
from claudeapp.claude.errors import NoModelAvailable, UpstreamError
from claudeapp.claude.results import GatewayResult
from claudeapp.conversations import context as ctx
from claudeapp.conversations import selectors, services
from claudeapp.conversations.models import Conversation, Message
from claudeapp.jobs import services as jobs
from claudeapp.jobs.models import Job
from routing import modelmap
from routing.errors import RoutingError

log = logging.getLogger(__name__)
UNLIMITED_WINDOW = 10**9


@dataclass(frozen=True)
class Refusal:
    message: Message
    retry_after: float | None = None


@dataclass
class Prepared:
    principal: Principal
    conversation: Conversation
    answer: Message
    max_tokens: int
    context: ctx.Context | None = None
    admission: Admission | None = None
    refused: Refusal | None = None
    spec: CallSpec | None = None  # what is sent upstream, once admitted

    @property
    def route_reason(self) -> str:
        return self.admission.decision.reason if self.admission else ""


def prepare(
    *,
    principal: Principal,
    conversation_id: int,
    user_text: str,
    model_choice: str,
    retry_of: str | None,
    max_tokens: int,
) -> Prepared:
    conversation = Conversation.objects.get(pk=conversation_id)
    if retry_of:
        user_text, answer = _reopen_failed(conversation, retry_of)
    else:
        _, answer = services.start_turn(conversation=conversation, user_text=user_text, model_requested=model_choice)
    prepared = Prepared(principal=principal, conversation=conversation, answer=answer, max_tokens=max_tokens)
    history = list(conversation.messages.exclude(pk=answer.pk).order_by("created_at", "id"))
    if history and history[-1].role == Message.Role.USER and history[-1].content == user_text:
        history = history[:-1]  # the question itself is added by build_context
    try:
        _admit(prepared, history=history, user_text=user_text, model_choice=model_choice)
    except (RoutingError, BillingError) as exc:
        prepared.refused = _refuse(answer, exc)
    return prepared


def prepare_admitted_first(
    *, principal: Principal, conversation: Conversation, content: str, model: str, max_tokens: int
) -> Prepared:
    """The API's turn: admission first, so a refused call (429, 402, unknown model) leaves the
    conversation as it was; raises routing and billing errors before anything is saved."""
    history = list(selectors.messages_of(conversation))
    untrimmed = ctx.build_context(
        history, new_user_text=content, context_window=UNLIMITED_WINDOW, max_tokens=max_tokens
    )
    admission, spec = run.admit_sync(
        principal=principal,
        requested_model=model,
        spec=CallSpec(
            messages=untrimmed.messages, max_tokens=max_tokens, previous_model=conversation.last_model or None
        ),
        subject=f"conversation:{conversation.public_id}",
    )
    try:
        _, answer = services.start_turn(conversation=conversation, user_text=content, model_requested=model)
        prepared = Prepared(principal=principal, conversation=conversation, answer=answer, max_tokens=max_tokens)
        admitted(prepared, admission=admission, spec=spec, history=history, user_text=content)
        answer.status = Message.Status.STREAMING
        answer.routing_reason = admission.decision.reason[:300]
        answer.routing_decision_id = admission.decision.decision_id
        answer.save(update_fields=["status", "routing_reason", "routing_decision"])
    except BaseException:
        settlement.abandon(admission=admission)
        raise
    return prepared


def _admit(prepared: Prepared, *, history: list[Message], user_text: str, model_choice: str) -> None:
    untrimmed = ctx.build_context(
        history, new_user_text=user_text, context_window=UNLIMITED_WINDOW, max_tokens=prepared.max_tokens
    )
    try:
        admission, spec = run.admit_sync(
            principal=prepared.principal,
            requested_model=model_choice,
            spec=CallSpec(
                messages=untrimmed.messages,
                max_tokens=prepared.max_tokens,
                previous_model=prepared.conversation.last_model or None,
            ),
            subject=str(prepared.answer.public_id),
        )
    except UpstreamBusy as exc:
        prepared.context = untrimmed
        prepared.refused = _queue_while_busy(prepared, exc)
        return
    admitted(prepared, admission=admission, spec=spec, history=history, user_text=user_text)
    answer = prepared.answer
    answer.status = Message.Status.STREAMING
    answer.routing_reason = admission.decision.reason[:300]
    answer.routing_decision_id = admission.decision.decision_id
    answer.model_requested = model_choice
    answer.save(update_fields=["status", "routing_reason", "routing_decision", "model_requested"])


def admitted(
    prepared: Prepared, *, admission: Admission, spec: CallSpec, history: list[Message], user_text: str
) -> None:
    """Fit the context to the chosen model's window and keep what will be sent."""
    prepared.max_tokens = spec.max_tokens
    prepared.context = ctx.build_context(
        history, new_user_text=user_text, context_window=context_window(admission.decision.model_id),
        max_tokens=spec.max_tokens,
    )  # fmt: skip
    prepared.admission = admission
    prepared.spec = CallSpec(messages=prepared.context.messages, max_tokens=spec.max_tokens)


def context_window(model_id: str) -> int:
    info = modelmap.get_model_map().models.get(model_id)
    return info.context_window if info and info.context_window else UNLIMITED_WINDOW


def _queue_while_busy(prepared: Prepared, busy: UpstreamBusy) -> Refusal:
    """The org is at its Anthropic limit for this model: the turn waits in the queue, not in the browser."""
    answer = prepared.answer
    _enqueue_turn(prepared, model_id=busy.model_id)
    answer.error_type = "upstream_busy"
    answer.error_message = "Claude is at capacity right now; your message is queued and the answer will arrive here."
    answer.save(update_fields=["status", "job_id", "error_type", "error_message"])
    return Refusal(answer, busy.retry_after_seconds)


def _enqueue_turn(prepared: Prepared, *, model_id: str) -> None:
    answer = prepared.answer
    job = jobs.create(
        principal=prepared.principal,
        payload={"model": model_id, "messages": prepared.context.messages, "max_tokens": prepared.max_tokens},
        mode=Job.Mode.QUEUE,  # someone is waiting in the chat: never a day-long batch
        conversation_ref=str(prepared.conversation.public_id),
        message_ref=str(answer.public_id),
    )
    answer.status, answer.job_id = Message.Status.QUEUED, job.pk


def _reopen_failed(conversation: Conversation, answer_id: str) -> tuple[str, Message]:
    answer = conversation.messages.get(public_id=answer_id, role=Message.Role.ASSISTANT, status=Message.Status.FAILED)
    question = (
        conversation.messages.filter(role=Message.Role.USER, created_at__lte=answer.created_at)
        .exclude(pk=answer.pk)
        .order_by("-created_at", "-id")
        .first()
    )
    answer.status, answer.error_type, answer.error_message = Message.Status.PENDING, "", ""
    answer.save(update_fields=["status", "error_type", "error_message"])
    return (question.content if question else ""), answer


def _refuse(answer: Message, exc: Exception) -> Refusal:
    retry_after = getattr(exc, "retry_after_seconds", None)
    answer.status = Message.Status.FAILED
    answer.error_type = type(exc).__name__
    answer.error_message = plain_words(exc)
    answer.save(update_fields=["status", "error_type", "error_message"])
    return Refusal(answer, retry_after)


def plain_words(exc: Exception) -> str:
    """What a person reads under a failed answer."""
    if isinstance(exc, RateLimited):
        return f"Rate limited: try again in {max(1, round(exc.retry_after_seconds))} s."
    if isinstance(exc, BudgetExceeded):
        resets = timezone.localtime(exc.resets_at).strftime("%Y-%m-%d %H:%M")
        return f"Over budget: the {exc.scope} budget of ${exc.limit_micros / 1e6:,.2f} is used up until {resets}."
    if isinstance(exc, PriceMissing):
        return f"Model {exc.model_id} has no price set, so it cannot be used yet. An operator can add one."
    if isinstance(exc, NoModelAvailable):
        return "Claude is overloaded right now; your message is queued and the answer will arrive here."
    if isinstance(exc, UpstreamError):
        return f"Claude refused the request ({exc.error_type}): {exc.message}"[:500]
    return str(exc)[:500] or type(exc).__name__


@transaction.atomic
def record(prepared: Prepared, admission: Admission, ending: Ending) -> Message:
    """The call's one bill and the saved answer, in one transaction, for every ending: complete,
    cut (truncated, with what arrived), or the reader gone (Stop: the text it saw is kept, the
    tokens upstream produced to the end are billed)."""
    result = ending.result
    usage = run.billed_usage(result, input_bound=admission.input_tokens, max_tokens=admission.max_tokens)
    answer = prepared.answer
    entry = settlement.settle(
        admission=admission,
        usage=usage,
        event_key=f"message:{answer.public_id}",
        kind="message",
        subject=str(answer.public_id),
        model_used=result.model_used,
        upstream_request_id=result.request_id or "",
        upstream_message_id=result.message_id or "",
        ratelimit_headers=result.ratelimit_headers,
    )
    _apply_result(answer, result, usage=usage, cost_micros=entry.cost_micros)
    if ending.detached:
        answer.content = ending.seen_text
        answer.status = Message.Status.TRUNCATED
        answer.error_type, answer.error_message = "stopped", "Stopped before the end"
    elif ending.error is not None:
        answer.status = Message.Status.TRUNCATED
        answer.error_type = getattr(ending.error, "error_type", type(ending.error).__name__)
        answer.error_message = (getattr(ending.error, "message", "") or str(ending.error))[:500]
    answer.save()
    _remember_model(prepared.conversation, result.model_used)
    return answer


def mark_stopped(prepared: Prepared, admission: Admission, seen_text: str) -> None:
    """The reader left (Stop, a closed tab): show what it saw as stopped now; the bill lands once
    upstream's answer has been read to its end (record)."""
    Message.objects.filter(pk=prepared.answer.pk, status=Message.Status.STREAMING).update(
        content=seen_text,
        status=Message.Status.TRUNCATED,
        error_type="stopped",
        error_message="Stopped before the end",
    )


def _apply_result(answer: Message, result: GatewayResult, *, usage: dict[str, int], cost_micros: int) -> None:
    answer.content = result.text
    answer.status = Message.Status.COMPLETE
    answer.model_used = result.model_used
    answer.stop_reason = result.stop_reason or ""
    answer.input_tokens = usage.get("input_tokens", 0)
    answer.output_tokens = usage.get("output_tokens", 0)
    answer.cache_write_tokens = usage.get("cache_creation_input_tokens", 0)
    answer.cache_read_tokens = usage.get("cache_read_input_tokens", 0)
    answer.cost_micros = cost_micros
    answer.upstream_request_id = result.request_id or ""
    answer.upstream_message_id = result.message_id or ""
    answer.latency_ms = round(result.latency_ms)
    answer.ttft_ms = round(result.ttft_ms) if result.ttft_ms is not None else None
    answer.fallback_reason = (result.fallback_reason or "")[:300]


def _remember_model(conversation: Conversation, model_id: str) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(last_model=model_id, updated_at=timezone.now())


@transaction.atomic
def record_failure(prepared: Prepared, admission: Admission, error: BaseException) -> Message:
    """No output reached the reader. What failed attempts consumed upstream is billed (else the hold
    goes back); when no model can answer now, a job answers the turn later."""
    run.settle_failure(admission, error)
    answer = prepared.answer
    if isinstance(error, NoModelAvailable):
        _enqueue_turn(prepared, model_id=admission.decision.model_id)
        answer.error_type, answer.error_message = "overloaded", plain_words(error)
        answer.save(update_fields=["status", "job_id", "error_type", "error_message"])
        return answer
    answer.status = Message.Status.FAILED
    answer.error_type = getattr(error, "error_type", type(error).__name__)
    answer.error_message = plain_words(error)  # type: ignore[arg-type]
    answer.save(update_fields=["status", "error_type", "error_message"])
    return answer
