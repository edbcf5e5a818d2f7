"""Message Batches through the official SDK: submit, retrieve, results, cancel, delete.

The jobs package decides what goes into a batch and what to do with each result; this module
only speaks the API. SDK exceptions are turned into the gateway's UpstreamError (errors.py), so
callers branch on `retryable` as they do for single calls. No retries here: the caller's beat
task runs again in seconds, which is the retry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from claudeapp.claude.client import get_client
from claudeapp.claude.errors import UPSTREAM_EXCEPTIONS, from_exception

# API limits (docs: batch-processing): at most this many requests and bytes per create call.
MAX_REQUESTS = 100_000
MAX_BYTES = 256 * 1024 * 1024
COUNT_KEYS = ("processing", "succeeded", "errored", "canceled", "expired")


@dataclass(frozen=True)
class BatchStatus:
    id: str
    processing_status: str  # in_progress | canceling | ended
    counts: dict[str, int] = field(default_factory=dict)
    created_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None

    @property
    def ended(self) -> bool:
        return self.processing_status == "ended"


def submit(requests: Sequence[Mapping[str, Any]], *, headers: Mapping[str, str] | None = None) -> BatchStatus:
    """Create one batch of `{"custom_id", "params"}` requests; the returned status carries its id.
    `headers` go upstream with the call (a proxied caller's anthropic-version and anthropic-beta)."""
    extra = {"extra_headers": dict(headers)} if headers else {}
    return _call(lambda client: client.messages.batches.create(requests=list(requests), **extra))


def retrieve(batch_id: str) -> BatchStatus:
    return _call(lambda client: client.messages.batches.retrieve(batch_id))


def cancel(batch_id: str) -> BatchStatus:
    """Ask upstream to stop; requests not yet processed end as `canceled`."""
    return _call(lambda client: client.messages.batches.cancel(batch_id))


def delete(batch_id: str) -> None:
    """Delete an ended batch upstream (upstream refuses one still processing)."""
    try:
        get_client().messages.batches.delete(batch_id)
    except UPSTREAM_EXCEPTIONS as exc:
        raise from_exception(exc) from exc


def results(batch_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(custom_id, result) for every request of an ended batch, in upstream's order (not ours).

    A result is the API's JSON: {"type": "succeeded", "message": {...}} | {"type": "errored",
    "error": {"type": "error", "error": {"type", "message"}, "request_id"}} | {"type": "canceled"}
    | {"type": "expired"}.
    """
    try:
        for line in get_client().messages.batches.results(batch_id):
            yield line.custom_id, line.result.model_dump(mode="json", exclude_none=True)
    except UPSTREAM_EXCEPTIONS as exc:
        raise from_exception(exc) from exc


def result_lines(batch_id: str) -> Iterator[dict[str, Any]]:
    """Every line of an ended batch's results as upstream wrote it (`{"custom_id", "result"}`), for
    relaying: the fields upstream sent, nulls included, and none it did not send."""
    try:
        for line in get_client().messages.batches.results(batch_id):
            yield line.model_dump(mode="json", exclude_unset=True)
    except UPSTREAM_EXCEPTIONS as exc:
        raise from_exception(exc) from exc


def request_size(request: Mapping[str, Any]) -> int:
    """Bytes one request adds to the create body (JSON, as the SDK sends it, plus a separator)."""
    import json

    return len(json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode()) + 1


def _call(fn: Any) -> BatchStatus:
    try:
        batch = fn(get_client())
    except UPSTREAM_EXCEPTIONS as exc:
        raise from_exception(exc) from exc
    counts = batch.request_counts.model_dump() if batch.request_counts else {}
    return BatchStatus(
        id=batch.id,
        processing_status=batch.processing_status,
        counts={key: int(counts.get(key) or 0) for key in COUNT_KEYS},
        created_at=batch.created_at,
        expires_at=batch.expires_at,
        ended_at=batch.ended_at,
    )
