"""The test control API under /_emulator/ (no auth): config, reset, stats, clock, ledger, health."""

from __future__ import annotations

from typing import Any

from emulator.clock import rfc3339
from emulator.context import Ctx
from emulator.errors import invalid

LEDGER_FILTERS = ("request_id", "message_id", "batch_id", "ending")


async def health(ctx: Ctx) -> None:
    await ctx.out.json(200, {"ok": True})


async def get_config(ctx: Ctx) -> None:
    await ctx.out.json(200, ctx.state.config.to_dict())


async def set_config(ctx: Ctx) -> None:
    patch = ctx.request.json()
    if not isinstance(patch, dict):
        raise invalid("config patch must be a JSON object")
    try:
        config = ctx.state.update_config(patch)
    except ValueError as exc:
        raise invalid(str(exc)) from None
    await ctx.out.json(200, config.to_dict())


async def reset(ctx: Ctx) -> None:
    ctx.state.reset()
    await ctx.out.json(200, {"ok": True})


async def stats(ctx: Ctx) -> None:
    last = ctx.request.query.get("last")
    await ctx.out.json(200, ctx.state.stats.snapshot(int(last) if last and last.isdigit() else None))


async def clock(ctx: Ctx) -> None:
    body: Any = ctx.request.json() if ctx.request.body else {}
    seconds = body.get("advance_seconds", 0) if isinstance(body, dict) else None
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        raise invalid("advance_seconds: expected a non-negative number")
    now = ctx.state.clock.advance(float(seconds))
    await ctx.out.json(200, {"now": now, "now_rfc3339": rfc3339(now), "offset_seconds": ctx.state.clock.offset})


async def ledger(ctx: Ctx) -> None:
    query = ctx.request.query
    unknown = sorted(set(query) - set(LEDGER_FILTERS))
    if unknown:
        raise invalid(f"{unknown[0]}: unknown filter; use {', '.join(LEDGER_FILTERS)}")
    await ctx.out.json(200, {"charges": ctx.state.ledger.find(query)})


async def clear_ledger(ctx: Ctx) -> None:
    await ctx.out.json(200, {"cleared": ctx.state.ledger.clear()})
