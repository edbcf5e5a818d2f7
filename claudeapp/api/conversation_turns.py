"""A turn of a partner's conversation over the API: the chat turn's steps (outcomes.py), with the
admission taken first, so a refused call (429, 402, unknown model) leaves the conversation as it was."""

from __future__ import annotations

import asyncio
import uuid

from claudeapp.accounts.principals import Principal
from claudeapp.calls import admission as calls_admission
from claudeapp.calls import settlement
from claudeapp.calls.run import cap_max_tokens
from claudeapp.claude import gateway
from claudeapp.claude.errors import NoModelAvailable
from claudeapp.claude.results import StreamEnd
from claudeapp.conversations import context as ctx
from claudeapp.conversations import outcomes, selectors, services
from claudeapp.conversations.models import Message
from claudeapp.conversations.outcomes import Prepared
from claudeapp.conversations.turns import in_db_thread

UNLIMITED_WINDOW = 10**9


def prepare(
    *, principal: Principal, partner_key_id: int, conversation_id: uuid.UUID, content: str, model: str, max_tokens: int
) -> Prepared:
    """Raises Http404 (not this key's conversation), routing and billing errors before anything is saved."""
    conversation = selectors.get_conversation(
        owner_id=principal.user_id, public_id=conversation_id, partner_key_id=partner_key_id
    )
    history = list(selectors.messages_of(conversation))
    max_tokens = cap_max_tokens(max_tokens, model)
    untrimmed = ctx.build_context(
        history, new_user_text=content, context_window=UNLIMITED_WINDOW, max_tokens=max_tokens
    )
    admission = calls_admission.admit(
        principal=principal,
        requested_model=model,
        messages=untrimmed.messages,
        system=None,
        max_tokens=max_tokens,
        input_tokens=untrimmed.input_tokens_estimate,
        previous_model=conversation.last_model,
        subject=f"conversation:{conversation.public_id}",
    )
    try:
        return _start(principal, conversation, history, content, model, max_tokens, admission)
    except BaseException:
        settlement.abandon(admission=admission)
        raise


def _start(principal, conversation, history, content, model, max_tokens, admission) -> Prepared:  # type: ignore[no-untyped-def]
    model_id = admission.decision.model_id
    max_tokens = cap_max_tokens(max_tokens, model_id)
    _, answer = services.start_turn(conversation=conversation, user_text=content, model_requested=model)
    window = ctx_window(model_id)
    context = ctx.build_context(history, new_user_text=content, context_window=window, max_tokens=max_tokens)
    answer.status = Message.Status.STREAMING
    answer.routing_reason = admission.decision.reason[:300]
    answer.save(update_fields=["status", "routing_reason"])
    return Prepared(principal, conversation, answer, max_tokens, context=context, admission=admission)


def ctx_window(model_id: str) -> int:
    from routing import modelmap

    info = modelmap.get_model_map().models.get(model_id)
    return info.context_window if info and info.context_window else UNLIMITED_WINDOW


async def aprepare(**kwargs) -> Prepared:  # type: ignore[no-untyped-def]
    return await in_db_thread(prepare)(**kwargs)


async def complete(prepared: Prepared) -> Message:
    """The answer, saved: complete, or queued as a job when no model can answer now.
    Other gateway errors are saved on the answer as failed and propagate."""
    try:
        result = await gateway.acomplete(
            models=prepared.admission.models,
            messages=prepared.context.messages,
            max_tokens=prepared.max_tokens,
            metadata={"user_id": prepared.principal.key},
        )
    except NoModelAvailable as exc:
        return await _save(outcomes.queue_for_later, prepared=prepared, error=exc)
    except Exception as exc:
        await _save(outcomes.fail, prepared=prepared, error=exc)
        raise
    except BaseException:  # cancelled: the caller left before upstream answered
        await asyncio.shield(in_db_thread(settlement.abandon)(admission=prepared.admission))
        raise
    return await _save(outcomes.finish, prepared=prepared, event=StreamEnd(result))


async def _save(step, **kwargs):  # type: ignore[no-untyped-def]
    return await asyncio.shield(in_db_thread(step)(**kwargs))
