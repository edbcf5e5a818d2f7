"""Attachments as Messages API content blocks: images as `image`, PDFs as `document`, text files as `text`."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from claudeapp.attachments.models import Attachment


def block(attachment: Attachment) -> dict[str, Any]:
    data = bytes(attachment.data)
    if attachment.kind == Attachment.Kind.IMAGE:
        source = {"type": "base64", "media_type": attachment.media_type, "data": base64.b64encode(data).decode()}
        return {"type": "image", "source": source}
    if attachment.kind == Attachment.Kind.DOCUMENT:
        source = {"type": "base64", "media_type": attachment.media_type, "data": base64.b64encode(data).decode()}
        return {"type": "document", "source": source, "title": attachment.filename}
    text = data.decode("utf-8-sig", errors="replace")
    return {"type": "text", "text": f'<file name="{attachment.filename}">\n{text}\n</file>'}


def user_content(text: str, attachments: Sequence[Attachment]) -> str | list[dict[str, Any]]:
    """A user turn's content: the plain text alone, or the files first and the text after them
    (Anthropic recommends documents and images before the question)."""
    if not attachments:
        return text
    content = [block(a) for a in attachments]
    if text:
        content.append({"type": "text", "text": text})
    return content
