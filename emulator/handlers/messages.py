"""POST /v1/messages and POST /v1/messages/count_tokens.

Every POST /v1/messages leaves one charge on the ledger (emulator/ledger.py), written before the
last bytes of its response go out.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass

from emulator import ids, ledger, pipeline, streaming
from emulator.cache import CacheUsage
from emulator.context import Ctx
from emulator.faults import Fault, FaultSpec, parse_spec
from emulator.handlers import injection
from emulator.http import JSON_TYPE, wait_for_disconnect
from emulator.markers import Directives
from emulator.render import message_json, usage_json
from emulator.reply import Reply
from emulator.tokens import count_input_tokens, units
from emulator.validation import MessageRequest, validate_request

SHOULD_RETRY_HEADER = "x-emulator-should-retry"


async def count_tokens(ctx: Ctx) -> None:
    req = validate_request(ctx.request.json(), ctx.version, count_only=True)
    ctx.entry["model"] = req.model
    pipeline.check_model(req, ctx.state.config)
    await ctx.out.json(200, {"input_tokens": count_input_tokens(req)})


async def create(ctx: Ctx) -> None:
    req = validate_request(ctx.request.json(), ctx.version)
    ctx.entry.update(model=req.model, stream=req.stream)
    pipeline.check_model(req, ctx.state.config)
    directives = pipeline.directives_for(req)
    _should_retry(ctx, directives)
    fault = choose_fault(ctx, req, directives)
    delay_ms = injection.latency_ms(ctx, directives)
    if delay_ms:
        await asyncio.sleep(delay_ms / 1000)
    all_units = units(req)
    ctx.state.ratelimit.admit(sum(u.tokens for u in all_units), ctx.now())
    if fault is not None:
        ctx.entry["fault"] = fault.describe()
        if fault.spec.preempts:
            refuse(ctx)  # before the error response, the drop or the hang goes out
        if await injection.fire(ctx, fault.spec, directives):
            return
    reply, usage = pipeline.generate(ctx.state, req, directives, ctx.owner, all_units)
    ctx.state.ratelimit.record_output(reply.output_tokens, ctx.now())
    out = Outcome(ids.message_id(), req.model, reply, usage)
    spec = fault.spec if fault else None
    if req.stream:
        await _stream(ctx, out, spec, _pacing(ctx, directives))
    else:
        await _respond(ctx, out, spec, _pacing(ctx, directives))


@dataclass(frozen=True)
class Outcome:
    msg_id: str
    model: str
    reply: Reply
    usage: CacheUsage


def refuse(ctx: Ctx) -> None:
    """Charge nothing for a call that ended before any message started (a no-op once charged)."""
    if not ctx.charged:
        _charge(ctx, None, "refused", ledger.usage(ledger.ZERO, 0))


def _charge(ctx: Ctx, msg_id: str | None, ending: str, usage: dict[str, int]) -> None:
    ctx.charged = True
    entry = ctx.entry
    ctx.state.ledger.record(
        request_id=entry["request_id"],
        message_id=msg_id,
        model=entry["model"],
        stream=entry["stream"],
        ending=ending,
        usage=usage,
    )


def choose_fault(ctx: Ctx, req: MessageRequest, directives: Directives) -> Fault | None:
    """Header first, then prompt markers, then per-model config, then the seeded error rates."""
    state = ctx.state
    header = ctx.request.headers.get(injection.FAULT_HEADER)
    sources = [("header", _specs([header] if header else [])), ("marker", _specs(directives.faults))]
    counted = any(spec.count is not None for _, specs in sources for spec in specs)
    key = hashlib.blake2b(ctx.request.body, digest_size=16).hexdigest() if counted else ""
    for source, specs in sources:
        spec = state.faults.pick(specs, req.model, req.stream, key)
        if spec is not None:
            return Fault(spec, source)
    model_spec = state.model_fault(req.model)
    if model_spec is not None and state.faults.pick([model_spec], req.model, req.stream, f"model:{req.model}"):
        return Fault(model_spec, "model")
    drawn = state.faults.draw(state.config.error_rates)
    return Fault(drawn, "random") if drawn is not None else None


def _specs(raws: list[str]) -> list[FaultSpec]:
    return [spec for spec in (parse_spec(raw) for raw in raws) if spec is not None]


def _should_retry(ctx: Ctx, directives: Directives) -> None:
    value = ctx.request.headers.get(SHOULD_RETRY_HEADER) or directives.should_retry
    if value in ("true", "false"):
        ctx.out.extra["x-should-retry"] = value


def _pacing(ctx: Ctx, directives: Directives) -> streaming.Pacing:
    config = ctx.state.config
    ttft = directives.ttft_ms if directives.ttft_ms is not None else config.ttft_ms
    chunk = directives.chunk_ms if directives.chunk_ms is not None else config.chunk_ms
    return streaming.Pacing(ttft / 1000, chunk / 1000)


async def _stream(ctx: Ctx, out: Outcome, spec: FaultSpec | None, pacing: streaming.Pacing) -> None:
    start = message_json(out.msg_id, out.model, Reply(), out.usage, "standard")
    start.update(stop_reason=None, stop_sequence=None)
    start["usage"]["output_tokens"] = 1
    tail = usage_json(out.usage, out.reply.output_tokens, "standard")
    tail = {
        k: tail[k] for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
    }
    frames = streaming.frames(start, out.reply, tail, ctx.state.config.words_per_chunk)
    ending = "complete"
    if spec is not None and spec.kind == "stream-cut":
        frames, ending = streaming.cut_after(frames, spec.arg), "cut"
    elif spec is not None and spec.kind in ("stream-error", "stream-error-after"):
        frames = streaming.error_after(frames, spec.arg if spec.kind == "stream-error-after" else 0)
        ending = "error"

    def on_end(written: int, gone: bool) -> None:
        if gone and written == 0:  # not even message_start went out
            _charge(ctx, None, "disconnect", ledger.usage(ledger.ZERO, 0))
            return
        final = "disconnect" if gone else ending
        output = out.reply.output_tokens
        if final != "complete":
            output = streaming.output_tokens_sent(frames[:written], output)
        _charge(ctx, out.msg_id, final, ledger.usage(out.usage, output))

    await streaming.write(ctx.out, ctx.request.receive, frames, pacing, ending == "cut", on_end)


async def _respond(ctx: Ctx, out: Outcome, spec: FaultSpec | None, pacing: streaming.Pacing) -> None:
    if pacing.paced:
        text = "".join(b.text for b in out.reply.blocks)
        delay = pacing.ttft_s + pacing.chunk_s * len(streaming.chunks(text, ctx.state.config.words_per_chunk))
        if await _sleep_unless_gone(ctx, delay):
            _charge(ctx, None, "disconnect", ledger.usage(ledger.ZERO, 0))  # no byte of the message went out
            return
    body = json.dumps(message_json(out.msg_id, out.model, out.reply, out.usage, "standard")).encode()
    cut = spec is not None and spec.kind == "stream-cut"
    # The whole message was generated and (half of it) sent, so a cut JSON reply is charged in full.
    _charge(ctx, out.msg_id, "cut" if cut else "complete", ledger.usage(out.usage, out.reply.output_tokens))
    if cut:
        await ctx.out.start(200, JSON_TYPE)
        await ctx.out.body(body[: len(body) // 2], more=True)
        await ctx.out.abort()
        return
    await ctx.out.raw(200, JSON_TYPE, body)


async def _sleep_unless_gone(ctx: Ctx, seconds: float) -> bool:
    """Sleep; True if the client disconnected meanwhile (nothing more to send)."""
    gone = asyncio.ensure_future(wait_for_disconnect(ctx.request.receive))
    try:
        await asyncio.wait({gone}, timeout=seconds)
        return gone.done()
    finally:
        gone.cancel()
