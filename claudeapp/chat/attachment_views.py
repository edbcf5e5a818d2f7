"""Files attached in the composer: upload (checked, kept, not yet sent), read back by their owner, removed
before sending. Someone else's attachment is a 404."""

from __future__ import annotations

from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from claudeapp.attachments import selectors, services
from claudeapp.attachments.errors import AttachmentRefused
from claudeapp.attachments.models import Attachment

# Shown inline by the browser; everything else downloads. Text is served as text/plain whatever it
# holds (an .html file stays text), and no attachment runs script (sandboxed, nosniff).
INLINE_KINDS = {Attachment.Kind.IMAGE, Attachment.Kind.TEXT}


def describe(attachment: Attachment) -> dict[str, object]:
    return {
        "id": str(attachment.public_id),
        "kind": attachment.kind,
        "filename": attachment.filename,
        "media_type": attachment.media_type,
        "size_bytes": attachment.size_bytes,
        "pages": attachment.pages,
        "tokens_estimate": attachment.tokens_estimate,
        "url": reverse("chat:attachment", args=[attachment.public_id]),
    }


def _refused(exc: AttachmentRefused) -> JsonResponse:
    return JsonResponse(exc.body(), status=exc.status)


@login_required
@require_POST
def upload(request: HttpRequest) -> JsonResponse:
    try:
        # The declared size first: a too-large upload is refused without parsing its body.
        services.check_size(_declared_length(request))
        upload = request.FILES.get("file")
        if upload is None:
            raise AttachmentRefused("Choose a file to attach.", field="file")
        services.check_size(upload.size)
        attachment = services.store(owner_id=request.user.pk, filename=upload.name or "file", data=upload.read())
    except AttachmentRefused as exc:
        return _refused(exc)
    return JsonResponse(describe(attachment), status=201)


def _declared_length(request: HttpRequest) -> int | None:
    try:
        # The multipart envelope adds a little; a file at the limit still passes.
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0) - 16 * 1024) or None
    except ValueError:
        return None


@login_required
@require_GET
def download(request: HttpRequest, attachment_id: str) -> HttpResponse:
    attachment = selectors.get_own(owner_id=request.user.pk, public_id=attachment_id)
    content_type = attachment.media_type
    if attachment.kind == Attachment.Kind.TEXT:
        content_type = "text/plain; charset=utf-8"
    response = HttpResponse(bytes(attachment.data), content_type=content_type)
    disposition = "inline" if attachment.kind in INLINE_KINDS else "attachment"
    response["Content-Disposition"] = f"{disposition}; filename*=UTF-8''{_quoted(attachment.filename)}"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
@require_POST
def discard(request: HttpRequest, attachment_id: str) -> HttpResponse:
    """Remove a file from the composer before it is sent (a sent one stays with its message)."""
    attachment = selectors.get_own(owner_id=request.user.pk, public_id=attachment_id)
    if attachment.message_id is not None:
        return _refused(AttachmentRefused("This file was sent with a message; it stays with it.", field="id"))
    attachment.delete()
    return HttpResponse(status=204)


def _quoted(filename: str) -> str:
    return quote(filename, safe="")
