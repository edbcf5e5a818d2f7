"""Message Batches on /anthropic: a partner's batch goes upstream as one batch of its own.

    create    validate every request (as /anthropic/v1/messages would, per anthropic-version), route
              it, take its share of the key's token limits and hold its worst case at the batch price
              on the key's budgets (calls/queued.py, as batch jobs do), then one upstream create;
              any refusal gives back every hold already taken and nothing goes upstream
    retrieve  upstream's status under our id; once ended, the results are settled
    settle    each `succeeded` result billed once at the batch price from its own usage (ledger key
              `anthropic-batch:<id>:<custom_id>`); errored, canceled and expired results give their
              hold back. The beat (tasks.settle_anthropic_batches) does it for batches nobody reads.
              Each result but a canceled one is one request log line (surface `batches`).
    results   upstream's JSONL lines as they are (the partner's custom_ids, upstream's messages)
    delete    an ended batch only (as Anthropic): settled first, then deleted upstream and here

Sync functions: the async views run them on a worker thread (claudeapp.core.dbthread).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone
from rest_framework import serializers

from billing.models import LedgerEntry, Reservation
from claudeapp.accounts.principals import Principal
from claudeapp.api import anthropic_version
from claudeapp.api.batch_models import AnthropicBatch, AnthropicBatchRequest
from claudeapp.api.message_inputs import anthropic_request
from claudeapp.calls import admission, observe, queued, run
from claudeapp.calls.errors import MaxTokensTooLarge
from claudeapp.claude import batches as upstream
from claudeapp.claude.errors import UpstreamError, UpstreamNotFound
from routing import services as routing
from routing.errors import RoutingError

log = logging.getLogger(__name__)

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_REQUESTS = upstream.MAX_REQUESTS
# Upstream keeps a batch at most 24 h; the holds outlive that, with time to notice the end.
HOLD_FOR = dt.timedelta(hours=26)
# The request log's error type of a result that carries none of upstream's (an errored one carries its own).
ITEM_ERRORS = {"errored": "api_error", "expired": "batch_expired", "missing": "batch_result_missing"}


class BatchNotFound(Exception):
    def __init__(self, batch_id: str) -> None:
        self.batch_id = batch_id
        super().__init__(f"message_batch_id: no batch {batch_id!r}")


class BatchNotEnded(Exception):
    def __init__(self, batch_id: str, status: str) -> None:
        super().__init__(f"Batch {batch_id} has not ended yet ({status}); its results are not ready.")


class BatchStillProcessing(Exception):
    def __init__(self, batch_id: str) -> None:
        super().__init__(
            f"Message batch {batch_id} cannot be deleted while it is still processing. "
            "Cancel it first and wait for it to end."
        )


@dataclass(frozen=True)
class Prepared:
    custom_id: str
    model_id: str
    params: dict[str, Any]  # what goes upstream: the caller's params, the routed model, our user id


# --- create -------------------------------------------------------------------------------


def create(
    *, principal: Principal, body: Mapping[str, Any], version: str, headers: Mapping[str, str]
) -> AnthropicBatch:
    """Validate, route, limit and hold every request, then create the batch upstream.
    Raises ValidationError, RateLimited, BudgetExceeded, PriceMissing, UpstreamError."""
    requests = _requests(body)
    models = [_validate(entry, i, version) for i, entry in enumerate(requests)]  # every 400 before any routing
    prepared = [_prepare(principal, requests[i], i, model) for i, model in enumerate(models)]
    batch = AnthropicBatch.objects.create(
        principal_kind=principal.kind, principal_id=principal.id, user_id=principal.user_id,
        request_count=len(prepared), processing_count=len(prepared),
    )  # fmt: skip
    rows: list[AnthropicBatchRequest] = []
    try:
        for item in prepared:
            rows.append(_hold(batch, principal, item))
        AnthropicBatchRequest.objects.bulk_create(rows)  # before the create: a crash then leaves the holds findable
        status = upstream.submit([{"custom_id": p.custom_id, "params": p.params} for p in prepared], headers=headers)
    except BaseException:
        _give_back(rows)
        batch.delete()
        raise
    _record(batch, status)
    log.info("anthropic batch %s: %s requests submitted as %s", batch.public_id, len(rows), status.id)
    return batch


def _requests(body: Mapping[str, Any]) -> list[Any]:
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise serializers.ValidationError({"requests": ["A non-empty list of {custom_id, params} is required."]})
    if len(requests) > MAX_REQUESTS:
        raise serializers.ValidationError({"requests": [f"At most {MAX_REQUESTS} requests per batch."]})
    seen: set[str] = set()
    for i, entry in enumerate(requests):
        custom_id = entry.get("custom_id") if isinstance(entry, dict) else None
        if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
            raise serializers.ValidationError({f"requests.{i}.custom_id": ["1-64 letters, digits, '-' or '_'."]})
        if custom_id in seen:
            raise serializers.ValidationError({f"requests.{i}.custom_id": [f"Duplicate custom_id {custom_id!r}."]})
        seen.add(custom_id)
        if not isinstance(entry.get("params"), dict):
            raise serializers.ValidationError({f"requests.{i}.params": ["An object of Messages parameters."]})
    return requests


def _validate(entry: dict[str, Any], i: int, version: str) -> str:
    """The request's params as /v1/messages would check them; returns the model it names."""
    where = f"requests.{i}.params"
    try:
        anthropic_version.check_body(entry["params"], version)
        model, spec, stream = anthropic_request(entry["params"], cap=None)
        if stream:
            raise serializers.ValidationError({"stream": ["Batch requests cannot stream."]})
        run.check_max_tokens(spec.max_tokens, model)
    except serializers.ValidationError as exc:
        raise serializers.ValidationError(_prefixed(exc.detail, where)) from exc
    except MaxTokensTooLarge as exc:
        raise serializers.ValidationError({f"{where}.max_tokens": [str(exc)]}) from exc
    return model


def _prepare(principal: Principal, entry: dict[str, Any], i: int, model: str) -> Prepared:
    params = dict(entry["params"])
    model_id = _route(principal, model, params, f"requests.{i}.params.model")
    params.update(model=model_id, metadata={"user_id": run.upstream_user_id(principal)})
    return Prepared(entry["custom_id"], model_id, params)


def _prefixed(detail: Any, where: str) -> Any:
    if isinstance(detail, dict):
        return {f"{where}.{name}": value for name, value in detail.items()}
    return {where: detail}


def _route(principal: Principal, model: str, params: Mapping[str, Any], field: str) -> str:
    """The model a request runs on: the router's choice for `auto` and aliases, as for a queued job."""
    request = routing.RouteRequest(
        principal=principal,
        requested_model=model,
        messages=params["messages"],
        system=params.get("system"),
        metadata={str(k): str(v) for k, v in (params.get("metadata") or {}).items() if k != "user_id"},
        estimated_input_tokens=queued.local_bound(params).tokens,
        interactive=False,
        mode="queue",
    )
    try:
        return admission.route(principal=principal, request=request).model_id
    except RoutingError as exc:
        raise serializers.ValidationError({field: [f"{model!r} is not a model this gateway serves."]}) from exc


def _hold(batch: AnthropicBatch, principal: Principal, item: Prepared) -> AnthropicBatchRequest:
    """The request's share of the token limits (no request slot: the batch is one call) and its hold."""
    queued.acquire_tokens(principal=principal, model_id=item.model_id, payload=item.params)
    held = queued.hold(principal=principal, model_id=item.model_id, payload=item.params, batch=True, hold_for=HOLD_FOR)
    return AnthropicBatchRequest(batch=batch, custom_id=item.custom_id, model_id=item.model_id, reservation_id=held.pk)


def _give_back(rows: list[AnthropicBatchRequest]) -> None:
    for row in rows:
        _release(row.reservation_id)


def _release(reservation_id: int | None) -> None:
    if reservation_id and (held := Reservation.objects.filter(pk=reservation_id).first()):
        queued.release(reservation=held)


# --- read, refresh, cancel ------------------------------------------------------------------


def get(*, principal: Principal, batch_id: str) -> AnthropicBatch:
    """The principal's own batch; anyone else's is reported missing (no id probing)."""
    batch = AnthropicBatch.objects.filter(
        public_id=batch_id, principal_kind=principal.kind, principal_id=principal.id
    ).first()
    if batch is None:
        raise BatchNotFound(batch_id)
    return batch


def retrieve(*, principal: Principal, batch_id: str) -> AnthropicBatch:
    return refresh(get(principal=principal, batch_id=batch_id))


def refresh(batch: AnthropicBatch) -> AnthropicBatch:
    """Upstream's current status; once it has ended, every result is settled."""
    if batch.processing_status != AnthropicBatch.Status.ENDED and batch.upstream_id:
        _record(batch, upstream.retrieve(batch.upstream_id))
    if batch.processing_status == AnthropicBatch.Status.ENDED and batch.settled_at is None:
        try:
            settle(batch)
        except UpstreamError as exc:  # the status still answers; the next read or beat settles
            log.warning("anthropic batch %s: results unavailable (%s)", batch.public_id, exc.describe())
    return batch


def cancel(*, principal: Principal, batch_id: str) -> AnthropicBatch:
    """Ask upstream to stop; requests not yet processed end `canceled` and their holds come back."""
    batch = get(principal=principal, batch_id=batch_id)
    if batch.processing_status == AnthropicBatch.Status.ENDED:
        return batch
    status = upstream.cancel(batch.upstream_id)
    batch.cancel_initiated_at = batch.cancel_initiated_at or timezone.now()
    batch.save(update_fields=["cancel_initiated_at"])
    _record(batch, status)
    return refresh(batch) if batch.processing_status == AnthropicBatch.Status.ENDED else batch


def delete(*, principal: Principal, batch_id: str) -> str:
    """Delete an ended batch: every result is settled first (its bills outlive it in the ledger),
    then upstream's copy and ours go. Returns the deleted id."""
    batch = refresh(get(principal=principal, batch_id=batch_id))
    if batch.processing_status != AnthropicBatch.Status.ENDED:
        raise BatchStillProcessing(batch.public_id)
    if batch.settled_at is None:
        settle(batch)  # refresh could not read the results: say why, and delete nothing unbilled
    if batch.upstream_id:
        with contextlib.suppress(UpstreamNotFound):  # already gone upstream (expired, or a retried delete)
            upstream.delete(batch.upstream_id)
    batch.delete()
    return batch_id


def page(
    *, principal: Principal, limit: int, before_id: str | None, after_id: str | None
) -> tuple[list[AnthropicBatch], bool]:
    """Newest first; `after_id` pages to older batches, `before_id` to newer ones."""
    rows = AnthropicBatch.objects.filter(principal_kind=principal.kind, principal_id=principal.id)
    if after_id:
        rows = rows.filter(pk__lt=get(principal=principal, batch_id=after_id).pk).order_by("-pk")
    elif before_id:
        rows = rows.filter(pk__gt=get(principal=principal, batch_id=before_id).pk).order_by("pk")
    else:
        rows = rows.order_by("-pk")
    found = list(rows[: limit + 1])
    has_more, found = len(found) > limit, found[:limit]
    if before_id:
        found.reverse()
    return [refresh(batch) for batch in found], has_more


def _record(batch: AnthropicBatch, status: upstream.BatchStatus) -> None:
    batch.upstream_id = status.id
    batch.processing_status = status.processing_status
    for key in upstream.COUNT_KEYS:
        setattr(batch, f"{key}_count", status.counts.get(key, 0))
    batch.expires_at = status.expires_at or batch.expires_at or timezone.now() + dt.timedelta(hours=24)
    batch.ended_at = status.ended_at
    batch.polled_at = timezone.now()
    fields = ["upstream_id", "processing_status", *(f"{k}_count" for k in upstream.COUNT_KEYS)]
    batch.save(update_fields=[*fields, "expires_at", "ended_at", "polled_at"])


# --- settle and results ---------------------------------------------------------------------


def settle(batch: AnthropicBatch) -> None:
    """Bill every succeeded result once, give every other hold back; safe to run twice at once."""
    principal = Principal(kind=batch.principal_kind, id=batch.principal_id, user_id=batch.user_id or 0)  # type: ignore[arg-type]
    for line in upstream.result_lines(batch.upstream_id):
        _settle_one(batch, principal, str(line.get("custom_id")), line.get("result") or {})
    for row in AnthropicBatchRequest.objects.filter(batch=batch, result_type="").values_list("pk", flat=True):
        _settle_row(batch, row, "missing", _release_row)  # upstream reported nothing for it
    batch.settled_at = timezone.now()
    batch.save(update_fields=["settled_at"])


def _settle_one(batch: AnthropicBatch, principal: Principal, custom_id: str, result: Mapping[str, Any]) -> None:
    row = AnthropicBatchRequest.objects.filter(batch=batch, custom_id=custom_id).values_list("pk", flat=True).first()
    if row is None:
        log.warning("anthropic batch %s: upstream result for unknown custom_id %r", batch.public_id, custom_id)
        return
    kind = str(result.get("type") or "errored")
    if kind == "succeeded":
        message = result.get("message") or {}
        _settle_row(batch, row, kind, lambda r: _bill(batch, principal, r, message))
    else:
        error = (result.get("error") or {}).get("error") or {}
        _settle_row(batch, row, kind, _release_row, error_type=str(error.get("type") or "") or None)


def _settle_row(batch: AnthropicBatch, row_id: int, kind: str, action: Any, *, error_type: str | None = None) -> None:
    """Apply one result to its request row, only while the row is unsettled: the one settlement that
    applies it also logs it (after commit), so a read racing the beat logs it once."""
    with transaction.atomic():
        row = AnthropicBatchRequest.objects.select_for_update().filter(pk=row_id, result_type="").first()
        if row is None:
            return  # settled by someone else already
        entry = action(row)
        row.result_type, row.cost_micros = kind, int(entry.cost_micros if entry is not None else 0)
        row.save(update_fields=["result_type", "cost_micros"])
        if kind != "canceled":  # never ran upstream, billed nothing: not a call
            transaction.on_commit(partial(_observe, batch, row, entry, error_type or ITEM_ERRORS.get(kind, kind)))


def _observe(batch: AnthropicBatch, row: AnthropicBatchRequest, entry: LedgerEntry | None, error_type: str) -> None:
    """The request log line of one settled request: request id our batch id (the one its owner knows;
    the custom_id rides on the log line), upstream request id upstream's batch id."""
    observe.batch_item(
        request_id=batch.public_id,
        status="complete" if entry is not None else "failed",
        principal_kind=batch.principal_kind,
        principal_id=batch.principal_id,
        model_requested=row.model_id,
        model_used=entry.model_id if entry is not None else row.model_id,
        upstream_request_id=batch.upstream_id,
        entry=entry,
        error_type=None if entry is not None else error_type,
        custom_id=row.custom_id,
        batch_result=row.result_type,
    )


def _release_row(row: AnthropicBatchRequest) -> None:
    _release(row.reservation_id)


def _bill(
    batch: AnthropicBatch, principal: Principal, row: AnthropicBatchRequest, message: Mapping[str, Any]
) -> LedgerEntry:
    held = Reservation.objects.filter(pk=row.reservation_id).first() if row.reservation_id else None
    # The hold is gone (reaped) or there was none: bill the ledger all the same (upstream charged it).
    reservation = held or queued.empty_hold(principal=principal, model_id=row.model_id, batch=True)
    return queued.settle_message(
        reservation=reservation,
        message=message,
        event_key=f"anthropic-batch:{batch.pk}:{row.custom_id}",
        kind="batch",
        subject=batch.public_id,
    )


def results(*, principal: Principal, batch_id: str) -> Iterator[dict[str, Any]]:
    """The ended batch's result lines, settled first."""
    batch = refresh(get(principal=principal, batch_id=batch_id))
    if batch.processing_status != AnthropicBatch.Status.ENDED:
        raise BatchNotEnded(batch.public_id, batch.processing_status)
    return upstream.result_lines(batch.upstream_id)


def settle_open(*, limit: int = 100) -> int:
    """The beat's pass: refresh batches not yet settled, oldest poll first. Returns how many."""
    open_ids = list(
        AnthropicBatch.objects.filter(settled_at__isnull=True)
        .exclude(upstream_id="")
        .order_by("polled_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in open_ids:
        try:
            refresh(AnthropicBatch.objects.get(pk=pk))
        except Exception:  # one batch upstream cannot answer for must not stop the others
            log.warning("anthropic batch %s: refresh failed; next beat tries again", pk, exc_info=True)
    return len(open_ids)
