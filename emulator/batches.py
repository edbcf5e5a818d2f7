"""Message Batches: storage and the in_progress -> (canceling ->) ended state machine on the clock.

Results are produced lazily when a batch is first looked at after its end time; `resolve`
(supplied by the handler) turns one request into its result object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emulator.clock import rfc3339
from emulator.errors import ApiError
from emulator.validation import MessageRequest

DAY = 86_400.0
RESULT_TYPES = ("succeeded", "errored", "canceled", "expired")


@dataclass
class BatchItem:
    custom_id: str
    req: MessageRequest
    outcome: str | None  # from a [[batch:...]] marker; None = succeed


@dataclass
class Batch:
    id: str
    owner: str
    created_at: float
    ends_at: float
    items: list[BatchItem]
    status: str = "in_progress"
    cancel_initiated_at: float | None = None
    processed_before_cancel: int | None = None
    ended_at: float | None = None
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def expires_at(self) -> float:
        return self.created_at + DAY

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("processing", *RESULT_TYPES), 0)
        if self.status != "ended":
            counts["processing"] = len(self.items)
            return counts
        for line in self.results:
            counts[line["result"]["type"]] += 1
        return counts

    def to_json(self, base_url: str) -> dict[str, Any]:
        ended = self.status == "ended"
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": self.status,
            "request_counts": self.counts(),
            "created_at": rfc3339(self.created_at),
            "expires_at": rfc3339(self.expires_at),
            "ended_at": rfc3339(self.ended_at) if self.ended_at else None,
            "cancel_initiated_at": rfc3339(self.cancel_initiated_at) if self.cancel_initiated_at else None,
            "archived_at": None,
            "results_url": f"{base_url}/v1/messages/batches/{self.id}/results" if ended else None,
        }


Resolve = Callable[[Batch, BatchItem], dict[str, Any]]


class BatchStore:
    def __init__(self) -> None:
        self.batches: dict[str, Batch] = {}

    def clear(self) -> None:
        self.batches.clear()

    def add(self, batch: Batch) -> Batch:
        self.batches[batch.id] = batch
        return batch

    def get(self, owner: str, batch_id: str) -> Batch:
        batch = self.batches.get(batch_id)
        if batch is None or batch.owner != owner:
            raise ApiError(404, f"No message batch found with id {batch_id}")
        return batch

    def owned(self, owner: str) -> list[Batch]:
        return [b for b in reversed(self.batches.values()) if b.owner == owner]

    def delete(self, owner: str, batch_id: str) -> None:
        batch = self.get(owner, batch_id)
        if batch.status != "ended":
            raise ApiError(
                400,
                f"Message batch {batch_id} cannot be deleted while it is still processing. "
                "Cancel it first and wait for it to end.",
            )
        del self.batches[batch_id]


def cancel(batch: Batch, now: float, cancel_seconds: float) -> None:
    if batch.status != "in_progress":
        return
    span = max(batch.ends_at - batch.created_at, 1e-9)
    done = min(1.0, max(0.0, (now - batch.created_at) / span))
    batch.processed_before_cancel = int(done * len(batch.items))
    batch.status = "canceling"
    batch.cancel_initiated_at = now
    batch.ends_at = min(batch.ends_at, now + cancel_seconds)


def advance(batch: Batch, now: float, resolve: Resolve) -> Batch:
    """End the batch if its time has come, computing every result once."""
    if batch.status == "ended" or now < batch.ends_at:
        return batch
    processed = batch.processed_before_cancel
    for index, item in enumerate(batch.items):
        if processed is not None and index >= processed:
            result: dict[str, Any] = {"type": "canceled"}
        else:
            result = resolve(batch, item)
        batch.results.append({"custom_id": item.custom_id, "result": result})
    batch.status = "ended"
    batch.ended_at = batch.ends_at
    return batch
