"""Files of a message for the templates, without their bytes (prefetched by the page when it can)."""

from __future__ import annotations

from django import template
from django.template.defaultfilters import filesizeformat

from claudeapp.attachments import selectors, services
from claudeapp.attachments.inspect import TEXT_EXTENSIONS
from claudeapp.attachments.models import Attachment
from claudeapp.conversations import instructions

register = template.Library()


@register.simple_tag
def attachments_of(message: object) -> list[Attachment]:
    if getattr(message, "role", None) != "user" or getattr(message, "pk", None) is None:
        return []
    cache = getattr(message, "_prefetched_objects_cache", {})
    if "attachments" in cache:
        return list(cache["attachments"])
    return list(selectors.of_messages([message.pk]))  # type: ignore[attr-defined]


@register.simple_tag
def attachment_limits() -> dict[str, object]:
    """What the composer checks before an upload starts (the server checks again)."""
    limits = services.limits()
    return {
        **limits,
        "max_size": filesizeformat(limits["max_bytes"]),
        "accept": "image/png,image/jpeg,image/gif,image/webp,application/pdf,text/*,"
        + ",".join("." + ext for ext in sorted(TEXT_EXTENSIONS)),
    }


@register.filter
def instruction_tokens(text: str) -> int:
    return instructions.token_count(text or "")
