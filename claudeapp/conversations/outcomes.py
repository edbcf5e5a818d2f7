"""The synchronous steps of a chat turn: prepare before the stream, record the outcome after it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from billing import money
from billing.errors import BillingError, BudgetExceeded, PriceMissing, RateLimited
from claudeapp.accounts.principals import Principal
from claudeapp.attachments import services as attachments
from claudeapp.attachments.models import Attachment
from claudeapp.calls import run, settlement
from claudeapp.calls.admission import Admission
from claudeapp.calls.errors import UpstreamBusy
from claudeapp.calls.inflight import SettlesAs
from claudeapp.calls.run import CallSpec, Ending
from claudeapp.claude.errors import NoModelAvailable, UpstreamError
from claudeapp.claude.results import GatewayResult
from claudeapp.conversations import context as ctx
from claudeapp.conversations import instructions, selectors, services
from claudeapp.conversations.errors import InvalidTurn
from claudeapp.conversations.models import Conversation, Message
from claudeapp.jobs import services as jobs
from claudeapp.jobs.models import Job
from routing import modelmap
from routing.errors import RoutingError

log = logging.getLogger(__name__)
UNLIMITED_WINDOW = 10**9
# The thinking budget counts toward max_tokens, so a turn that thinks may write this much more.
THINKING_BUDGET_TOKENS = 2048


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
    extra: dict[str, object] | None = None  # thinking, when asked for
    question: Message | None = None  # the user message this answer answers

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
    edit_of: str | None = None,
    regenerate: str | None = None,
    think: bool = False,
    attachment_ids: Sequence[str] = (),
) -> Prepared:
    """Save the turn (a new question, an edited one, or a new answer to an earlier one) and admit it.

    Raises InvalidTurn, before anything is saved, when the message to retry, edit or regenerate is not
    one of this conversation's."""
    conversation = Conversation.objects.get(pk=conversation_id)
    files = attachments.staged(owner_id=principal.user_id, ids=attachment_ids)  # AttachmentRefused: a 400
    if retry_of:
        question, answer = _reopen_failed(conversation, retry_of)
    elif regenerate:
        question, answer = services.start_regenerate(
            conversation=conversation, message_id=regenerate, model_requested=model_choice
        )
    elif edit_of:
        question, answer = services.start_edit(
            conversation=conversation, message_id=edit_of, user_text=user_text, model_requested=model_choice
        )
        if not files:  # an edited question keeps the original's files unless new ones come with it
            original = conversation.messages.get(public_id=edit_of)
            attachments.carry_over(from_message_id=original.pk, to_message_id=question.pk)
    else:
        question, answer = services.start_turn(
            conversation=conversation, user_text=user_text, model_requested=model_choice
        )
    attachments.attach(attachments=files, message_id=question.pk)
    prepared = Prepared(
        principal=principal,
        conversation=conversation,
        answer=answer,
        max_tokens=max_tokens,
        extra=thinking(think),
        question=question,
    )
    history = selectors.history_before(conversation, answer)
    try:
        _admit(prepared, history=history, user_text=question.content, model_choice=model_choice)
    except (RoutingError, BillingError) as exc:
        prepared.refused = _refuse(answer, exc)
    return prepared


def thinking(think: bool) -> dict[str, object] | None:
    """Extended thinking asked for: the model thinks first, and the chat shows it collapsed."""
    if not think:
        return None
    return {"thinking": {"type": "enabled", "budget_tokens": THINKING_BUDGET_TOKENS}}


def prepare_admitted_first(
    *,
    principal: Principal,
    conversation: Conversation,
    content: str,
    model: str,
    max_tokens: int,
    files: Sequence[Attachment] = (),
) -> Prepared:
    """The API's turn: admission first, so a refused call (429, 402, unknown model) leaves the
    conversation as it was; raises routing and billing errors before anything is saved."""
    history = selectors.active_path(conversation)
    untrimmed = ctx.build_context(
        history, new_user_text=content, context_window=UNLIMITED_WINDOW, max_tokens=max_tokens,
        system=conversation.system_prompt, new_attachments=files,
    )  # fmt: skip
    admission, spec = run.admit_sync(
        principal=principal,
        requested_model=model,
        spec=CallSpec(
            messages=untrimmed.messages,
            max_tokens=max_tokens,
            previous_model=conversation.last_model or None,
            system=instructions.system_for(conversation),
        ),
        subject=f"conversation:{conversation.public_id}",
    )
    try:
        question, answer = services.start_turn(conversation=conversation, user_text=content, model_requested=model)
        attachments.attach(attachments=files, message_id=question.pk)
        prepared = Prepared(
            principal=principal, conversation=conversation, answer=answer, max_tokens=max_tokens, question=question
        )
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
        history, new_user_text=user_text, context_window=UNLIMITED_WINDOW, max_tokens=prepared.max_tokens,
        **_question_extras(prepared),
    )  # fmt: skip
    try:
        admission, spec = run.admit_sync(
            principal=prepared.principal,
            requested_model=model_choice,
            spec=CallSpec(
                messages=untrimmed.messages,
                max_tokens=prepared.max_tokens + (THINKING_BUDGET_TOKENS if prepared.extra else 0),
                previous_model=prepared.conversation.last_model or None,
                extra=prepared.extra,
                system=instructions.system_for(prepared.conversation),
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
        max_tokens=spec.max_tokens, **_question_extras(prepared),
    )  # fmt: skip
    prepared.admission = admission
    prepared.spec = CallSpec(
        messages=prepared.context.messages,
        max_tokens=spec.max_tokens,
        extra=prepared.extra,
        system=instructions.system_for(prepared.conversation),
    )


def _question_extras(prepared: Prepared) -> dict[str, Any]:
    """The conversation's instructions and the question's files, so the context fits with them."""
    return {
        "system": prepared.conversation.system_prompt,
        "new_attachments": attachments.of_question(prepared.question),
    }


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
        payload={
            "model": model_id,
            "messages": prepared.context.messages,
            "max_tokens": prepared.max_tokens,
            **(prepared.extra or {}),
            **({"system": system} if (system := instructions.system_for(prepared.conversation)) else {}),
        },
        mode=Job.Mode.QUEUE,  # someone is waiting in the chat: never a day-long batch
        conversation_ref=str(prepared.conversation.public_id),
        message_ref=str(answer.public_id),
    )
    answer.status, answer.job_id = Message.Status.QUEUED, job.pk


def _reopen_failed(conversation: Conversation, answer_id: str) -> tuple[Message, Message]:
    """Retry: the failed answer itself is written again (no new branch: there was nothing to keep)."""
    try:
        answer = conversation.messages.get(
            public_id=answer_id, role=Message.Role.ASSISTANT, status=Message.Status.FAILED
        )
    except (Message.DoesNotExist, ValueError, ValidationError) as exc:
        raise InvalidTurn("No failed answer with this id in this conversation.", field="retry") from exc
    question = answer.parent if answer.parent_id else services.question_before(answer)
    if question is None:
        raise InvalidTurn("This answer has no question to answer again.", field="retry")
    answer.status, answer.error_type, answer.error_message = Message.Status.PENDING, "", ""
    answer.save(update_fields=["status", "error_type", "error_message"])
    return question, answer


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
        budget = f"the {exc.scope} budget of {money.usd(exc.limit_micros)}"
        if exc.reason == exc.EXHAUSTED:
            return f"Over budget: {budget} is used up until {resets}."
        # Not used up: the hold for this turn's worst case (prompt bound + max_tokens) did not fit.
        return (
            f"Over budget: {budget} has {money.usd(exc.remaining_micros)} left, less than this message's worst "
            f"case ({money.usd(exc.requested_micros)}). A smaller model or a shorter message may fit; "
            f"or wait until {resets}."
        )
    if isinstance(exc, PriceMissing):
        return f"Model {exc.model_id} has no price set, so it cannot be used yet. An operator can add one."
    if isinstance(exc, NoModelAvailable):
        return "Claude is overloaded right now; your message is queued and the answer will arrive here."
    if isinstance(exc, UpstreamError):
        return f"Claude refused the request ({exc.error_type}): {exc.message}"[:500]
    return str(exc)[:500] or type(exc).__name__


def settles_as(prepared: Prepared) -> SettlesAs:
    """The answer's ledger identity: its one bill, by `record` or, when its process dies mid-call, by
    the in-flight reaper (which then leaves the answer failed: conversations/interrupted.py)."""
    answer_id = str(prepared.answer.public_id)
    return SettlesAs(event_key=f"message:{answer_id}", subject=answer_id)


@transaction.atomic
def record(prepared: Prepared, admission: Admission, ending: Ending) -> Message:
    """The call's one bill and the saved answer, in one transaction, for every ending: complete,
    cut (truncated, with what arrived), or the reader gone (Stop: the text it saw is kept, the
    tokens upstream produced to the end are billed)."""
    result = ending.result
    usage = run.billed_usage(result, input_bound=admission.input_tokens, max_tokens=admission.max_tokens)
    answer, identity = prepared.answer, settles_as(prepared)
    entry = settlement.settle(
        admission=admission,
        usage=usage,
        event_key=identity.event_key,
        kind="message",
        subject=identity.subject,
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
    answer.thinking = thinking_text(result.content)
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


def thinking_text(content: list[dict[str, object]]) -> str:
    return "\n\n".join(str(b.get("thinking") or "") for b in content if b.get("type") == "thinking").strip()


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
