"""'Run in background': the turn becomes a durable job; its answer lands in the conversation later."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from billing.errors import BillingError
from claudeapp.accounts.principals import Principal
from claudeapp.attachments import services as attachments
from claudeapp.conversations import context as ctx
from claudeapp.conversations import instructions, selectors, services
from claudeapp.conversations.models import Conversation, Message
from claudeapp.conversations.outcomes import plain_words
from claudeapp.jobs import services as jobs
from claudeapp.jobs.models import Job
from routing.errors import RoutingError

DEFAULT_MAX_TOKENS = 4096


@transaction.atomic
def submit(
    *,
    principal: Principal,
    conversation: Conversation,
    user_text: str,
    model_choice: str,
    attachment_ids: Sequence[str] = (),
) -> Message:
    history = selectors.active_path(conversation)
    files = attachments.staged(owner_id=principal.user_id, ids=attachment_ids)  # AttachmentRefused: a 400
    question, answer = services.start_turn(conversation=conversation, user_text=user_text, model_requested=model_choice)
    attachments.attach(attachments=files, message_id=question.pk)
    context = ctx.build_context(
        history, new_user_text=user_text, context_window=10**9, max_tokens=DEFAULT_MAX_TOKENS,
        system=conversation.system_prompt, new_attachments=files,
    )  # fmt: skip
    try:
        job = _enqueue(principal, conversation, answer, context, model_choice)
    except (RoutingError, BillingError) as exc:  # refused before anything ran: the answer says why
        answer.status = Message.Status.FAILED
        answer.error_type, answer.error_message = type(exc).__name__, plain_words(exc)
        answer.save(update_fields=["status", "error_type", "error_message"])
        return answer
    answer.status, answer.job_id = Message.Status.QUEUED, job.pk
    answer.save(update_fields=["status", "job_id"])
    return answer


def _enqueue(
    principal: Principal, conversation: Conversation, answer: Message, context: ctx.Context, model_choice: str
) -> Job:
    return jobs.create(  # routed once, there: the classifier (if a rule asks) inside the user's limits and budgets
        principal=principal,
        payload={
            "model": model_choice,
            "messages": context.messages,
            "max_tokens": DEFAULT_MAX_TOKENS,
            **({"system": system} if (system := instructions.system_for(conversation)) else {}),
        },
        queue=Job.Queue.INTERACTIVE,
        mode=Job.Mode.QUEUE,  # someone is waiting in the chat: never a day-long batch
        conversation_ref=str(conversation.public_id),
        message_ref=str(answer.public_id),
        previous_model=conversation.last_model or None,
    )
