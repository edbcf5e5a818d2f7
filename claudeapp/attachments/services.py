"""Writes: a file is checked and stored (not yet sent), then attached to the user's message when it is sent."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import uuid
from collections.abc import Sequence

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from claudeapp.attachments import inspect as inspection
from claudeapp.attachments.errors import AttachmentRefused
from claudeapp.attachments.models import Attachment
from claudeapp.calls import accounting

PIXELS_PER_TOKEN = 750  # Anthropic's rule of thumb for an image's tokens: width x height / 750
TOKENS_PER_PDF_PAGE = 3_000  # a page's text plus its page image, on the dense side


def limits() -> dict[str, int]:
    """The limits the composer checks before uploading, and this module again on arrival."""
    return {
        "max_bytes": settings.ATTACHMENT_MAX_BYTES,
        "max_count": settings.ATTACHMENT_MAX_COUNT,
        "max_pages": settings.ATTACHMENT_MAX_PDF_PAGES,
    }


def check_size(size: int | None, *, field: str = "file") -> None:
    """Refuse a too-large file from its declared size, before its bytes are read where possible."""
    if size is not None and size > settings.ATTACHMENT_MAX_BYTES:
        raise AttachmentRefused(
            f"Files are limited to {_mb(settings.ATTACHMENT_MAX_BYTES)}; this one is {_mb(size)}.",
            field=field,
            status=413,
        )


def store(
    *, owner_id: int, filename: str, data: bytes, partner_key_id: int | None = None, field: str = "file"
) -> Attachment:
    """Check a file (size, kind from its bytes, pages) and keep it, not yet attached to a message."""
    check_size(len(data), field=field)
    if not data:
        raise AttachmentRefused("The file is empty.", field=field)
    filename = (filename or "file").replace("\\", "/").rsplit("/", 1)[-1][:255] or "file"
    try:
        found = inspection.inspect(data, filename)
    except inspection.NotSupported as exc:
        raise AttachmentRefused(f"{filename}: {exc}", field=field, status=400) from exc
    if found.kind == Attachment.Kind.DOCUMENT and (found.pages or 0) > settings.ATTACHMENT_MAX_PDF_PAGES:
        raise AttachmentRefused(
            f"{filename} has {found.pages} pages; PDFs are limited to {settings.ATTACHMENT_MAX_PDF_PAGES}.",
            field=field,
        )
    return Attachment.objects.create(
        owner_id=owner_id,
        partner_key_id=partner_key_id,
        kind=found.kind,
        media_type=found.media_type,
        filename=filename,
        size_bytes=len(data),
        pages=found.pages,
        width=found.width,
        height=found.height,
        tokens_estimate=_tokens_estimate(found, len(data)),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
    )


def _tokens_estimate(found: inspection.Inspected, size: int) -> int:
    """For fitting the context window only: the budget hold asks upstream's count_tokens."""
    if found.kind == Attachment.Kind.IMAGE:
        if found.width and found.height:
            return min(accounting.IMAGE_FALLBACK, math.ceil(found.width * found.height / PIXELS_PER_TOKEN))
        return accounting.IMAGE_FALLBACK
    if found.kind == Attachment.Kind.DOCUMENT:
        if found.pages:
            return found.pages * TOKENS_PER_PDF_PAGE
        return int(size * accounting.PDF_FALLBACK_PER_BYTE)
    return accounting.text_tokens(found.text or "") + accounting.BLOCK_OVERHEAD


def staged(
    *, owner_id: int, ids: Sequence[str | uuid.UUID], partner_key_id: int | None = None, field: str = "attachments"
) -> list[Attachment]:
    """The caller's own not-yet-sent files, in the order given. Unknown, someone else's or already sent: a 400."""
    if len(ids) > settings.ATTACHMENT_MAX_COUNT:
        raise AttachmentRefused(f"At most {settings.ATTACHMENT_MAX_COUNT} files per message.", field=field)
    if not ids:
        return []
    try:
        rows = Attachment.objects.filter(
            owner_id=owner_id, partner_key_id=partner_key_id, message__isnull=True, public_id__in=list(ids)
        )
        by_id = {str(a.public_id): a for a in rows}
    except (ValueError, ValidationError) as exc:
        raise AttachmentRefused("Not an attachment id.", field=field) from exc
    missing = [str(i) for i in ids if str(i) not in by_id]
    if missing:
        raise AttachmentRefused("No such attachment (or it was sent already): " + ", ".join(missing), field=field)
    return [by_id[str(i)] for i in ids]


def attach(*, attachments: Sequence[Attachment], message_id: int) -> None:
    """Bind staged files to the message they were sent with (only ones still unbound)."""
    if attachments:
        Attachment.objects.filter(pk__in=[a.pk for a in attachments], message__isnull=True).update(
            message_id=message_id
        )


def _mb(size: int) -> str:
    if size < 1024 * 1024:
        return f"{size:,} bytes" if size < 10 * 1024 else f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def carry_over(*, from_message_id: int, to_message_id: int) -> None:
    """An edited question keeps the original's files (copies: each message owns its own)."""
    for attachment in Attachment.objects.filter(message_id=from_message_id).order_by("created_at", "id"):
        attachment.pk, attachment.public_id, attachment.message_id = None, uuid.uuid4(), to_message_id
        attachment.save(force_insert=True)


def of_question(message: object) -> list[Attachment]:
    """A user message's files, with their bytes (they are sent upstream)."""
    pk = getattr(message, "pk", None)
    return list(Attachment.objects.filter(message_id=pk).order_by("created_at", "id")) if pk else []


def purge_unsent(*, older_than: dt.timedelta) -> int:
    """Files uploaded but never sent (the tab closed, the chip removed without a request): dropped after
    a day. A sent file lives as long as its message."""
    cutoff = timezone.now() - older_than
    deleted, _ = Attachment.objects.filter(message__isnull=True, created_at__lt=cutoff).delete()
    return deleted
