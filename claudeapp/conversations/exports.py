"""Exports: one conversation as Markdown or JSON (model, tokens and cost per answer), and everything a
person has here as one zip (conversations, their files, instructions, usage ledger)."""

from __future__ import annotations

import json
import re
import tempfile
import zipfile
from collections.abc import Sequence
from decimal import Decimal
from typing import IO, Any

from django.utils import timezone

from billing.models import LedgerEntry
from claudeapp.attachments.models import Attachment
from claudeapp.attachments.selectors import LIGHT_FIELDS
from claudeapp.conversations import instructions
from claudeapp.conversations.models import Conversation, Message

FORMAT_VERSION = 1


def dollars(micros: int) -> str:
    return f"{Decimal(micros) / 1_000_000:.6f}"


def _messages(conversation: Conversation) -> list[Message]:
    return list(conversation.messages.order_by("created_at", "id"))


def _attachments_by_message(messages: Sequence[Message]) -> dict[int, list[Attachment]]:
    by_message: dict[int, list[Attachment]] = {}
    rows = Attachment.objects.filter(message__in=[m.pk for m in messages]).only(*LIGHT_FIELDS)
    for attachment in rows.order_by("created_at", "id"):
        by_message.setdefault(attachment.message_id, []).append(attachment)  # type: ignore[arg-type]
    return by_message


def conversation_data(conversation: Conversation) -> dict[str, Any]:
    messages = _messages(conversation)
    files = _attachments_by_message(messages)
    public = {m.pk: str(m.public_id) for m in messages}
    answers = [m for m in messages if m.role == Message.Role.ASSISTANT]
    return {
        "format_version": FORMAT_VERSION,
        "id": str(conversation.public_id),
        "title": conversation.title,
        "model_choice": conversation.model_choice,
        "instructions": conversation.system_prompt,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        "totals": {
            "input_tokens": sum(m.input_tokens for m in answers),
            "output_tokens": sum(m.output_tokens for m in answers),
            "cost_micros": sum(m.cost_micros for m in answers),
            "cost_usd": dollars(sum(m.cost_micros for m in answers)),
        },
        "messages": [_message_data(m, public, files.get(m.pk, [])) for m in messages],
    }


def _message_data(message: Message, public: dict[int, str], files: list[Attachment]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(message.public_id),
        "parent_id": public.get(message.parent_id) if message.parent_id else None,
        "role": message.role,
        "status": message.status,
        "content": message.content,
        "created_at": message.created_at.isoformat(),
    }
    if files:
        data["attachments"] = [_file_data(a) for a in files]
    if message.role == Message.Role.ASSISTANT:
        data.update(
            model=message.model_used or None,
            input_tokens=message.input_tokens,
            output_tokens=message.output_tokens,
            cache_write_tokens=message.cache_write_tokens,
            cache_read_tokens=message.cache_read_tokens,
            cost_micros=message.cost_micros,
            cost_usd=dollars(message.cost_micros),
            stop_reason=message.stop_reason or None,
            error=message.error_message or None,
        )
    return data


def _file_data(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": str(attachment.public_id),
        "filename": attachment.filename,
        "kind": attachment.kind,
        "media_type": attachment.media_type,
        "size_bytes": attachment.size_bytes,
        "pages": attachment.pages,
    }


def conversation_json(conversation: Conversation) -> str:
    return json.dumps(conversation_data(conversation), ensure_ascii=False, indent=2)


def conversation_markdown(conversation: Conversation) -> str:
    data = conversation_data(conversation)
    lines = [f"# {data['title'] or 'Untitled conversation'}", ""]
    lines.append(f"Exported {timezone.now():%Y-%m-%d %H:%M} UTC · {len(data['messages'])} messages · "
                 f"{data['totals']['input_tokens']} in / {data['totals']['output_tokens']} out tokens · "
                 f"${data['totals']['cost_usd']}")  # fmt: skip
    if data["instructions"]:
        lines += ["", "## Instructions", "", _quote(data["instructions"])]
    for message in data["messages"]:
        lines += ["", f"## {'You' if message['role'] == 'user' else 'Claude'} · {message['created_at'][:16]}", ""]
        for attachment in message.get("attachments", []):
            lines.append(f"- Attached: {attachment['filename']} ({attachment['media_type']}, "
                         f"{attachment['size_bytes']} bytes)")  # fmt: skip
        if message.get("attachments"):
            lines.append("")
        lines.append(message["content"] or "_(no text)_")
        if message["role"] == "assistant":
            lines += ["", _answer_footer(message)]
    return "\n".join(lines) + "\n"


def _answer_footer(message: dict[str, Any]) -> str:
    parts = [message["model"] or "no model", f"{message['input_tokens']} in · {message['output_tokens']} out",
             f"${message['cost_usd']}"]  # fmt: skip
    if message["status"] != "complete":
        parts.append(message["status"] + (f": {message['error']}" if message["error"] else ""))
    return "*" + " · ".join(parts) + "*"


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in text.splitlines())


def filename_for(conversation: Conversation, extension: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", (conversation.title or "conversation").lower()).strip("-")[:50]
    return f"{slug or 'conversation'}-{str(conversation.public_id)[:8]}.{extension}"


def user_archive(*, user_id: int, username: str) -> IO[bytes]:
    """Everything of this person's browser chat as a zip, in a temporary file (rewound) for streaming."""
    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115  (the response closes it)
    conversations = Conversation.objects.filter(owner_id=user_id, partner_key_id__isnull=True).order_by("created_at")
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        index = []
        for conversation in conversations:
            base = f"conversations/{filename_for(conversation, '')[:-1]}"
            archive.writestr(f"{base}.json", conversation_json(conversation))
            archive.writestr(f"{base}.md", conversation_markdown(conversation))
            index.append({"id": str(conversation.public_id), "title": conversation.title, "files": base})
        for attachment in Attachment.objects.filter(owner_id=user_id, partner_key_id__isnull=True).iterator():
            archive.writestr(f"attachments/{attachment.public_id}-{attachment.filename}", bytes(attachment.data))
        archive.writestr("account.json", json.dumps(_account(user_id, username, index), ensure_ascii=False, indent=2))
        archive.writestr("usage.json", json.dumps(_ledger(user_id), ensure_ascii=False, indent=2))
    out.seek(0)
    return out


def _account(user_id: int, username: str, index: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "username": username,
        "exported_at": timezone.now().isoformat(),
        "default_instructions": instructions.default_for(user_id),
        "conversations": index,
    }


def _ledger(user_id: int) -> list[dict[str, Any]]:
    rows = LedgerEntry.objects.filter(principal_kind="user", principal_id=user_id).order_by("created_at", "id")
    return [_ledger_row(e) for e in rows.iterator()]


def _ledger_row(e: LedgerEntry) -> dict[str, Any]:
    return {
        "created_at": e.created_at.isoformat(),
        "kind": e.kind,
        "subject": e.subject,
        "model": e.model_id,
        "input_tokens": e.input_tokens,
        "output_tokens": e.output_tokens,
        "cost_micros": e.cost_micros,
        "cost_usd": dollars(e.cost_micros),
        "batch": e.batch,
    }
