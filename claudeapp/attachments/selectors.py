"""Reads of attachments, scoped to their owner: someone else's id is a 404, never a 403."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from claudeapp.attachments.models import Attachment

# Everything a listing needs, without the file's bytes.
LIGHT_FIELDS = ("public_id", "message_id", "kind", "media_type", "filename", "size_bytes", "pages", "width",
                "height", "tokens_estimate", "created_at")  # fmt: skip


def get_own(*, owner_id: int, public_id: uuid.UUID | str, partner_key_id: int | None = None) -> Attachment:
    try:
        return Attachment.objects.get(owner_id=owner_id, partner_key_id=partner_key_id, public_id=public_id)
    except (Attachment.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such attachment") from exc


def of_messages(message_ids: Iterable[int]) -> QuerySet[Attachment]:
    return Attachment.objects.filter(message_id__in=list(message_ids)).only(*LIGHT_FIELDS).order_by("created_at", "id")
