"""The /v1/messages/batches endpoints."""

from __future__ import annotations

import json
import re
from typing import Any

from emulator import batches, ids, ledger, pipeline
from emulator.batches import Batch, BatchItem
from emulator.context import Ctx
from emulator.errors import ApiError, error_object, invalid
from emulator.pagination import paginate
from emulator.render import message_json
from emulator.validation import validate_request

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_REQUESTS = 100_000
JSONL_TYPE = b"application/x-jsonl"


async def create(ctx: Ctx) -> None:
    items = _items(ctx.request.json(), ctx.version)
    state, now = ctx.state, ctx.now()
    ctx.state.ratelimit.admit(0, now)
    batch = Batch(ids.batch_id(), ctx.owner, now, now + state.config.batch_processing_seconds, items)
    state.batches.add(batch)
    await ctx.out.json(200, batch.to_json(ctx.request.base_url))


def _items(body: Any, version: str) -> list[BatchItem]:
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        raise invalid("requests: Field required (a non-empty list)")
    if len(requests) > MAX_REQUESTS:
        raise invalid(f"requests: at most {MAX_REQUESTS} requests are allowed in a batch")
    seen: set[str] = set()
    return [_item(entry, i, version, seen) for i, entry in enumerate(requests)]


def _item(entry: Any, i: int, version: str, seen: set[str]) -> BatchItem:
    if not isinstance(entry, dict):
        raise invalid(f"requests.{i}: Input should be a valid dictionary")
    custom_id = entry.get("custom_id")
    if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
        raise invalid(f"requests.{i}.custom_id: String should match pattern '{CUSTOM_ID.pattern}'")
    if custom_id in seen:
        raise invalid(
            f"requests.{i}.custom_id: duplicate custom_id '{custom_id}'; custom_id values must be unique within a batch"
        )
    seen.add(custom_id)
    params = entry.get("params")
    if not isinstance(params, dict):
        raise invalid(f"requests.{i}.params: Input should be a valid dictionary")
    if params.get("stream"):
        raise invalid(f"requests.{i}.params.stream: streaming is not supported in message batches")
    try:
        req = validate_request(params, version)
    except ApiError as err:
        raise invalid(f"requests.{i}.params.{err.message}") from None
    return BatchItem(custom_id, req, pipeline.directives_for(req).batch)


async def retrieve(ctx: Ctx) -> None:
    batch = _current(ctx)
    await ctx.out.json(200, batch.to_json(ctx.request.base_url))


async def list_batches(ctx: Ctx) -> None:
    owned = [_advance(ctx, b) for b in ctx.state.batches.owned(ctx.owner)]
    base = ctx.request.base_url
    await ctx.out.json(200, paginate(owned, ctx.request.query, key=lambda b: b.id, render=lambda b: b.to_json(base)))


async def cancel(ctx: Ctx) -> None:
    batch = _current(ctx)
    batches.cancel(batch, ctx.now(), ctx.state.config.batch_cancel_seconds)
    await ctx.out.json(200, batch.to_json(ctx.request.base_url))


async def delete(ctx: Ctx) -> None:
    _current(ctx)  # a batch past its end time must end before the check
    ctx.state.batches.delete(ctx.owner, ctx.params["batch_id"])
    await ctx.out.json(200, {"id": ctx.params["batch_id"], "type": "message_batch_deleted"})


async def results(ctx: Ctx) -> None:
    batch = _current(ctx)
    if batch.status != "ended":
        raise invalid(f"Message batch {batch.id} has not finished processing; results are not yet available")
    lines = b"".join(json.dumps(line).encode() + b"\n" for line in batch.results)
    await ctx.out.raw(200, JSONL_TYPE, lines)


def _current(ctx: Ctx) -> Batch:
    return _advance(ctx, ctx.state.batches.get(ctx.owner, ctx.params["batch_id"]))


def _advance(ctx: Ctx, batch: Batch) -> Batch:
    return batches.advance(batch, ctx.now(), lambda b, item: _resolve(ctx, b, item))


def _resolve(ctx: Ctx, batch: Batch, item: BatchItem) -> dict[str, Any]:
    outcome = item.outcome or ""
    if outcome in ("expired", "canceled"):
        return {"type": outcome}
    if outcome.startswith("errored"):
        error_type = outcome.partition(":")[2] or "invalid_request_error"
        return _errored(error_type, f"Emulated {error_type} for request {item.custom_id}")
    try:
        pipeline.check_model(item.req, ctx.state.config)
    except ApiError as err:
        return _errored(err.error_type, err.message)
    reply, usage = pipeline.generate(ctx.state, item.req, pipeline.directives_for(item.req), batch.owner)
    message = message_json(ids.message_id(), item.req.model, reply, usage, "batch")
    ctx.state.ledger.record(
        request_id=None,
        message_id=message["id"],
        model=item.req.model,
        stream=False,
        ending="complete",
        usage=ledger.usage(usage, reply.output_tokens),
        batch_id=batch.id,
        custom_id=item.custom_id,
    )
    return {"type": "succeeded", "message": message}


def _errored(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "errored", "error": error_object(error_type, message, ids.request_id())}
