"""The signed-in person's background jobs, with live status, and the status of one queued answer.

Both pages poll small JSON endpoints rather than hold an SSE stream open: a poll every
couple of seconds costs one short query, survives proxies and reconnects for free, and
keeps no database connection or worker slot busy between updates.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from claudeapp.accounts.principals import Principal
from claudeapp.chat.templatetags.chat_tags import usd
from claudeapp.conversations import selectors as conversations
from claudeapp.jobs import selectors as jobs
from claudeapp.jobs.models import Job

PAGE_LENGTH = 50
ERROR_PREVIEW_CHARS = 300
PROMPT_PREVIEW_CHARS = 80


def _my_jobs(request: HttpRequest) -> list[Job]:
    rows, _ = jobs.list_for_principal(principal=Principal.for_user(request.user), limit=PAGE_LENGTH)
    return rows


def _rows(rows: list[Job]) -> list[dict[str, Any]]:
    return [{"job": job, "error": error_text(job), "prompt": prompt_preview(job)} for job in rows]


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"  # live status: never let a cache answer a poll
    return response


@login_required
@require_GET
def jobs_page(request: HttpRequest) -> HttpResponse:
    return render(request, "chat/jobs.html", {"rows": _rows(_my_jobs(request))})


@login_required
@require_GET
def jobs_live(request: HttpRequest) -> HttpResponse:
    rows = _my_jobs(request)
    html = render_to_string("chat/_job_rows.html", {"rows": _rows(rows)}, request=request)
    active = any(not job.is_terminal for job in rows)
    return _no_store(JsonResponse({"jobs": [job_json(job) for job in rows], "html": html, "active": active}))


@login_required
@require_GET
def job_detail(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    principal = Principal.for_user(request.user)
    job = Job.objects.filter(pk=job_id, principal_kind=principal.kind, principal_id=principal.id).first()
    if job is None:
        raise Http404("No such job")  # someone else's job looks exactly like a missing one
    return _no_store(JsonResponse(job_json(job)))


@login_required
@require_GET
def message_status(request: HttpRequest, public_id: str, message_id: uuid.UUID) -> HttpResponse:
    """A queued answer asks here until its job has written it into the conversation."""
    conversation = conversations.get_conversation(owner_id=request.user.pk, public_id=public_id)
    message = conversation.messages.filter(public_id=message_id).first()
    if message is None:
        raise Http404("No such message")
    html = render_to_string("chat/_message.html", {"m": message}, request=request)
    return _no_store(JsonResponse({"status": message.status, "html": html}))


def job_json(job: Job) -> dict[str, Any]:
    return {
        "id": str(job.pk),
        "status": job.status,
        "status_label": job.get_status_display(),
        "model": job.model_used or job.model_requested,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "cost_micros": job.cost_micros,
        "cost": usd(job.cost_micros),
        "attempts": job.attempts,
        "last_error": error_text(job),
        "conversation": job.conversation_ref or None,
        "prompt": prompt_preview(job),
    }


def prompt_preview(job: Job) -> str:
    """The start of the job's last user message, so a row says what it was about."""
    messages = (job.payload or {}).get("messages") or []
    content = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
    if isinstance(content, list):
        content = " ".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    text = " ".join(str(content or "").split())
    return text if len(text) <= PROMPT_PREVIEW_CHARS else text[: PROMPT_PREVIEW_CHARS - 1] + "…"


def error_text(job: Job) -> str:
    if not (job.last_error_type or job.last_error_message):
        return ""
    text = f"{job.last_error_type}: {job.last_error_message}" if job.last_error_type else job.last_error_message
    return text[:ERROR_PREVIEW_CHARS]
