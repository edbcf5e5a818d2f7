"""Fault and latency injection that pre-empts a reply (shared by every /v1 route)."""

from __future__ import annotations

import asyncio

from emulator.context import Ctx
from emulator.errors import ApiError
from emulator.faults import FaultSpec, parse_spec
from emulator.http import wait_for_disconnect
from emulator.markers import EMPTY, Directives

LATENCY_HEADER = "x-emulator-latency-ms"
FAULT_HEADER = "x-emulator-fault"


def latency_ms(ctx: Ctx, directives: Directives) -> float:
    header = ctx.request.headers.get(LATENCY_HEADER)
    if header and header.replace(".", "", 1).isdigit():
        return float(header)
    if directives.latency_ms is not None:
        return directives.latency_ms
    return ctx.state.config.latency_ms


async def fire(ctx: Ctx, spec: FaultSpec, directives: Directives) -> bool:
    """Apply a fault that pre-empts the reply; True when the request is finished."""
    if spec.status is not None:
        raise ApiError(spec.status, headers=_retry_headers(ctx, spec, directives))
    if spec.kind == "drop":
        await ctx.out.abort()
        return True
    if spec.kind == "hang":
        await wait_for_disconnect(ctx.request.receive)
        ctx.out.status = 0
        return True
    return False


def _retry_headers(ctx: Ctx, spec: FaultSpec, directives: Directives) -> dict[str, str]:
    config = ctx.state.config
    headers: dict[str, str] = {}
    if spec.kind == "429":
        headers["retry-after"] = f"{config.retry_after_seconds:g}"
    elif spec.kind == "429-ms":
        headers["retry-after-ms"] = str(config.retry_after_ms)
    if directives.retry_after is not None:
        headers["retry-after"] = directives.retry_after
    if directives.retry_after_ms is not None:
        headers["retry-after-ms"] = directives.retry_after_ms
    return headers


async def header_fault(ctx: Ctx) -> bool:
    """For routes other than POST /v1/messages: header latency, then a header fault if any."""
    if LATENCY_HEADER in ctx.request.headers:
        await asyncio.sleep(latency_ms(ctx, EMPTY) / 1000)
    raw = ctx.request.headers.get(FAULT_HEADER)
    spec = parse_spec(raw) if raw else None
    if spec is None or spec.kind.startswith("stream"):
        return False
    ctx.entry["fault"] = f"header:{spec.raw}"
    return await fire(ctx, spec, EMPTY)
