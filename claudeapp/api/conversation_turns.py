"""A turn of a partner's conversation over the API: the conversation-turn service (conversations.outcomes
and turns, shared with the chat), with admission taken first so a refused call leaves the conversation as it was."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping, Sequence

from django.conf import settings
from rest_framework import serializers

from claudeapp.accounts.principals import Principal
from claudeapp.attachments import services as attachment_services
from claudeapp.attachments.errors import AttachmentRefused
from claudeapp.attachments.models import Attachment
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
    attachments: Sequence[Mapping[str, str]] = (),
) -> Prepared:
    """Raises Http404 (not this key's conversation), routing and billing errors before anything is saved.

    `model` None: the model the conversation was created with (validated then; `auto` by default)."""
    conversation = selectors.get_conversation(
        owner_id=principal.user_id, public_id=conversation_id, partner_key_id=partner_key_id
    )
    model = model or conversation.model_choice or Conversation.AUTO
    files = _store_files(principal.user_id, partner_key_id, attachments)
    try:
        return outcomes.prepare_admitted_first(
            principal=principal,
            conversation=conversation,
            content=content,
            model=model,
            max_tokens=cap_max_tokens(max_tokens, model),
            files=files,
        )
    except BaseException:  # refused: the turn was not saved, nor are its files
        Attachment.objects.filter(pk__in=[f.pk for f in files], message__isnull=True).delete()
        raise


def _store_files(owner_id: int, partner_key_id: int, attachments: Sequence[Mapping[str, str]]) -> list[Attachment]:
    """The turn's files, checked as the chat checks them (kind from the bytes, size, pages, count);
    a refusal is a 400 naming the file's field."""
    if len(attachments) > settings.ATTACHMENT_MAX_COUNT:
        raise serializers.ValidationError({"attachments": [f"At most {settings.ATTACHMENT_MAX_COUNT} files."]})
    files: list[Attachment] = []
    try:
        for n, item in enumerate(attachments):
            field = f"attachments.{n}.data"
            try:
                data = base64.b64decode(item["data"], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise AttachmentRefused("Not valid base64.", field=field) from exc
            files.append(
                attachment_services.store(
                    owner_id=owner_id, partner_key_id=partner_key_id, filename=item["filename"], data=data, field=field
                )
            )
    except AttachmentRefused as exc:
        Attachment.objects.filter(pk__in=[f.pk for f in files]).delete()
        raise serializers.ValidationError({exc.field: [exc.message]}) from exc
    return files


async def aprepare(**kwargs) -> Prepared:  # type: ignore[no-untyped-def]
    return await in_db_thread(prepare)(**kwargs)


complete = complete_answer
