"""`/anthropic/v1/messages/batches`: the Message Batches API for the official SDK's
`client.messages.batches.*` (create, retrieve, list, cancel, results, delete). The work is in
anthropic_batches.py; these views parse, make one service call on a worker thread, and render."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import serializers

from claudeapp.api import anthropic_batches as service
from claudeapp.api import anthropic_version
from claudeapp.api.anthropic_version import version_required
from claudeapp.api.auth import partner_key_required
from claudeapp.api.batch_models import AnthropicBatch
from claudeapp.api.bodies import json_object
from claudeapp.api.call_errors import describe_call_error
from claudeapp.api.errors import ErrorInfo, register_error, response_for
from claudeapp.api.models import Scope
from claudeapp.core.dbthread import in_db_thread


def register_errors() -> None:
    """This module's mappings (ApiConfig.ready)."""
    register_error(service.BatchNotFound, 404, "not_found_error")
    register_error(service.BatchNotEnded, 400, "invalid_request_error")
    register_error(service.BatchStillProcessing, 400, "invalid_request_error")


RESULTS_PATH = "/anthropic/v1/messages/batches/{id}/results"
LIST_LIMIT_MAX = 1000


def batch_body(request: HttpRequest, batch: AnthropicBatch) -> dict[str, Any]:
    ended = batch.processing_status == AnthropicBatch.Status.ENDED
    return {
        "id": batch.public_id,
        "type": "message_batch",
        "processing_status": batch.processing_status,
        "request_counts": {
            "processing": batch.processing_count,
            "succeeded": batch.succeeded_count,
            "errored": batch.errored_count,
            "canceled": batch.canceled_count,
            "expired": batch.expired_count,
        },
        "created_at": _time(batch.created_at),
        "expires_at": _time(batch.expires_at),
        "ended_at": _time(batch.ended_at),
        "cancel_initiated_at": _time(batch.cancel_initiated_at),
        "archived_at": _time(batch.archived_at),
        "results_url": request.build_absolute_uri(RESULTS_PATH.format(id=batch.public_id)) if ended else None,
    }


def _time(moment: Any) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def _error(request: HttpRequest, exc: BaseException) -> JsonResponse:
    return response_for(request, describe_call_error(exc, anthropic=True))


def _method(request: HttpRequest, *allowed: str) -> JsonResponse | None:
    if request.method in allowed:
        return None
    return response_for(request, ErrorInfo(405, "invalid_request_error", "Method not allowed."))


@partner_key_required(Scope.MESSAGES)
@version_required
async def batches(request: HttpRequest) -> HttpResponse:
    """POST: create a batch. GET: the key's batches, newest first (`limit`, `after_id`, `before_id`)."""
    refused = _method(request, "GET", "POST")
    if refused is not None:
        return refused
    try:
        if request.method == "POST":
            body = json_object(request)
            batch = await in_db_thread(service.create)(
                principal=request.principal,
                body=body,
                version=request.META["HTTP_ANTHROPIC_VERSION"],
                headers=anthropic_version.upstream_headers(request),
            )
            return JsonResponse(batch_body(request, batch))
        limit = _limit(request.GET.get("limit"))
        found, has_more = await in_db_thread(service.page)(
            principal=request.principal,
            limit=limit,
            before_id=request.GET.get("before_id") or None,
            after_id=request.GET.get("after_id") or None,
        )
    except Exception as exc:
        return _error(request, exc)
    data = [batch_body(request, batch) for batch in found]
    first_id, last_id = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return JsonResponse({"data": data, "has_more": has_more, "first_id": first_id, "last_id": last_id})


def _limit(raw: str | None) -> int:
    if raw is None:
        return 20
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= LIST_LIMIT_MAX:
        raise serializers.ValidationError({"limit": [f"An integer from 1 to {LIST_LIMIT_MAX}."]})
    return limit


@partner_key_required(Scope.MESSAGES)
@version_required
async def batch(request: HttpRequest, batch_id: str) -> HttpResponse:
    """GET: one batch. DELETE: an ended batch (a processing one is a 400: cancel it first)."""
    refused = _method(request, "GET", "DELETE")
    if refused is not None:
        return refused
    try:
        if request.method == "DELETE":
            deleted = await in_db_thread(service.delete)(principal=request.principal, batch_id=batch_id)
            return JsonResponse({"id": deleted, "type": "message_batch_deleted"})
        found = await in_db_thread(service.retrieve)(principal=request.principal, batch_id=batch_id)
    except Exception as exc:
        return _error(request, exc)
    return JsonResponse(batch_body(request, found))


@partner_key_required(Scope.MESSAGES)
@version_required
async def cancel(request: HttpRequest, batch_id: str) -> HttpResponse:
    refused = _method(request, "POST")
    if refused is not None:
        return refused
    try:
        found = await in_db_thread(service.cancel)(principal=request.principal, batch_id=batch_id)
    except Exception as exc:
        return _error(request, exc)
    return JsonResponse(batch_body(request, found))


@partner_key_required(Scope.MESSAGES)
@version_required
async def results(request: HttpRequest, batch_id: str) -> HttpResponse:
    """The results as JSONL, one `{"custom_id", "result"}` per line, as upstream wrote them."""
    refused = _method(request, "GET")
    if refused is not None:
        return refused
    try:
        lines = await in_db_thread(_result_lines)(principal=request.principal, batch_id=batch_id)
    except Exception as exc:
        return _error(request, exc)
    return HttpResponse(lines, content_type="application/x-jsonl")


def _result_lines(**kwargs: Any) -> bytes:
    rendered = (json.dumps(line, separators=(",", ":"), ensure_ascii=False) for line in service.results(**kwargs))
    return "".join(f"{line}\n" for line in rendered).encode()
