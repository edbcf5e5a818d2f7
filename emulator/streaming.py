"""Server-sent events for `"stream": true`, in the API's exact order, with pacing and stream faults.

A stream is a list of frames (encoded SSE events); "delta" frames are the content chunks that
pacing and the stream-error-after / stream-cut faults count. `write` tells its caller how the
stream ended, just before its last bytes go out, so the charge is on the ledger by then.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from emulator.http import Receive, Responder, wait_for_disconnect
from emulator.render import block_json
from emulator.reply import Block, Reply
from emulator.tokens import text_tokens

SSE_TYPE = b"text/event-stream; charset=utf-8"
_PIECE = re.compile(r"\s*\S+\s*")
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
_DELTA_TEXT = {"text_delta": "text", "thinking_delta": "thinking", "input_json_delta": "partial_json"}

# Called once per stream: (frames written, whether the client went away first).
OnEnd = Callable[[int, bool], None]


@dataclass(frozen=True)
class Frame:
    data: bytes
    delta: bool = False


@dataclass(frozen=True)
class Pacing:
    ttft_s: float = 0.0
    chunk_s: float = 0.0

    @property
    def paced(self) -> bool:
        return self.ttft_s > 0 or self.chunk_s > 0


def sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def chunks(text: str, words_per_chunk: int) -> list[str]:
    pieces = _PIECE.findall(text) or [text]
    step = max(1, words_per_chunk)
    return ["".join(pieces[i : i + step]) for i in range(0, len(pieces), step)]


def frames(start: dict[str, Any], reply: Reply, usage_tail: dict[str, Any], words: int) -> list[Frame]:
    out = [Frame(sse("message_start", {"type": "message_start", "message": start}))]
    for index, block in enumerate(reply.blocks):
        out.extend(_block_frames(index, block, words))
        if index == 0:
            out.insert(2, Frame(sse("ping", {"type": "ping"})))
    if not reply.blocks:
        out.append(Frame(sse("ping", {"type": "ping"})))
    delta = {"stop_reason": reply.stop_reason, "stop_sequence": reply.stop_sequence}
    out.append(Frame(sse("message_delta", {"type": "message_delta", "delta": delta, "usage": usage_tail})))
    out.append(Frame(sse("message_stop", {"type": "message_stop"})))
    return out


def _block_frames(index: int, block: Block, words: int) -> list[Frame]:
    opening = block_json(block)
    if block.kind == "text":
        opening["text"] = ""
    elif block.kind == "thinking":
        opening.update(thinking="", signature="")
    else:
        opening["input"] = {}
    out = [Frame(sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": opening}))]
    if block.kind in ("text", "thinking") and block.text:
        out.extend(_text_deltas(index, block.kind, block.text, words))
    out.extend(_delta(index, d) for d in _other_deltas(block))
    out.append(Frame(sse("content_block_stop", {"type": "content_block_stop", "index": index})))
    return out


@lru_cache(maxsize=2048)  # replies are deterministic, so repeated prompts reuse their encoded chunks
def _text_deltas(index: int, kind: str, text: str, words: int) -> tuple[Frame, ...]:
    head = (
        f'event: content_block_delta\ndata: {{"type":"content_block_delta","index":{index},'
        f'"delta":{{"type":"{kind}_delta","{kind}":'
    ).encode()
    return tuple(Frame(head + json.dumps(c).encode() + b"}}\n\n", delta=True) for c in chunks(text, words))


def _delta(index: int, delta: dict[str, Any]) -> Frame:
    return Frame(sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}), True)


def _other_deltas(block: Block) -> list[dict[str, Any]]:
    if block.kind == "thinking":
        return [{"type": "signature_delta", "signature": block.signature}]
    if block.kind != "tool_use":
        return []
    assert block.tool is not None
    raw = json.dumps(block.tool["input"])
    step = max(8, len(raw) // 4 or 1)
    return [{"type": "input_json_delta", "partial_json": raw[i : i + step]} for i in range(0, len(raw), step)]


def cut_after(items: list[Frame], deltas: int) -> list[Frame]:
    """Frames up to and including the `deltas`-th delta (or up to the first delta when 0)."""
    seen = 0
    for i, frame in enumerate(items):
        if frame.delta:
            if seen == deltas:
                return items[:i]
            seen += 1
    return items[:-1]  # fewer deltas than asked: still never send message_stop


def error_after(items: list[Frame], deltas: int) -> list[Frame]:
    return [*cut_after(items, deltas), Frame(sse("error", OVERLOADED))]


def output_tokens_sent(items: list[Frame], full: int) -> int:
    """Output tokens a stream that ended after `items` is charged.

    `full` once message_delta (which reports it) went out; before that, the content sent by the
    measure of tokens.py: per block the text or thinking text so far, for tool_use its name, the
    partial JSON so far and 4. At least 1, as message_start reports. Only early endings pay for this.
    """
    sent: dict[int, list[str]] = {}
    tool_names: list[str] = []
    for frame in items:
        head, _, data = frame.data.partition(b"\ndata: ")
        if head == b"event: message_delta":
            return full
        if head == b"event: content_block_start":
            event = json.loads(data)
            sent[event["index"]] = []
            if event["content_block"]["type"] == "tool_use":
                tool_names.append(event["content_block"]["name"])
        elif head == b"event: content_block_delta":
            event = json.loads(data)
            field = _DELTA_TEXT.get(event["delta"]["type"])
            if field is not None:
                sent[event["index"]].append(event["delta"][field])
    tokens = sum(text_tokens("".join(parts)) for parts in sent.values())
    tokens += sum(text_tokens(name) + 4 for name in tool_names)
    return max(1, min(tokens, full))


async def write(out: Responder, receive: Receive, items: list[Frame], pacing: Pacing, cut: bool, on_end: OnEnd) -> None:
    await out.start(200, SSE_TYPE, {"cache-control": "no-cache"})
    if pacing.paced:
        await _write_paced(out, receive, items, pacing, on_end)
    else:
        # One write: whatever the client does next, the whole body was sent.
        on_end(len(items), False)
        await out.body(b"".join(f.data for f in items), more=cut)
    if cut:
        await out.abort()
    elif pacing.paced:
        await out.body(b"")


async def _write_paced(out: Responder, receive: Receive, items: list[Frame], pacing: Pacing, on_end: OnEnd) -> None:
    gone = asyncio.ensure_future(wait_for_disconnect(receive))
    try:
        first = True
        last = len(items) - 1
        for i, frame in enumerate(items):
            if frame.delta:
                await asyncio.sleep(pacing.ttft_s if first else pacing.chunk_s)
                first = False
            if gone.done():
                on_end(i, True)
                return
            if i == last:
                on_end(len(items), False)
            await out.body(frame.data, more=True)
    finally:
        gone.cancel()
