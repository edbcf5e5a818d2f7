"""A turn of a partner's conversation over the API: the conversation-turn service (conversations.outcomes
and turns, shared with the chat), with admission taken first so a refused call leaves the conversation as it was."""

from __future__ import annotations

import uuid

from claudeapp.accounts.principals import Principal
from claudeapp.calls.run import cap_max_tokens
from claudeapp.conversations import outcomes, selectors
from claudeapp.conversations.models import Conversation
from claudeapp.conversations.outcomes import Prepared
from claudeapp.conversations.turns import complete_answer
from claudeapp.core.dbthread import in_db_thread

__all__ = ["aprepare", "complete", "prepare"]


def prepare(
    *,
    principal: Principal,
    partner_key_id: int,
    conversation_id: uuid.UUID,
    content: str,
    model: str | None,
    max_tokens: int,
) -> Prepared:
    """Raises Http404 (not this key's conversation), routing and billing errors before anything is saved.

    `model` None: the model the conversation was created with (validated then; `auto` by default)."""
    conversation = selectors.get_conversation(
        owner_id=principal.user_id, public_id=conversation_id, partner_key_id=partner_key_id
    )
    model = model or conversation.model_choice or Conversation.AUTO
    return outcomes.prepare_admitted_first(
        principal=principal,
        conversation=conversation,
        content=content,
        model=model,
        max_tokens=cap_max_tokens(max_tokens, model),
    )


async def aprepare(**kwargs) -> Prepared:  # type: ignore[no-untyped-def]
    return await in_db_thread(prepare)(**kwargs)


complete = complete_answer
