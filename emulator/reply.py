"""Decide what the assistant says: content blocks, stop reason and output tokens.

One Reply feeds both the JSON response and the SSE stream, so they always agree.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from emulator import classifier, ids, textgen, toolgen
from emulator.markers import Directives, strip_markers
from emulator.prompt import answers_tool_result, last_user_text, system_text
from emulator.tokens import text_tokens
from emulator.validation import MessageRequest


@dataclass
class Block:
    kind: str  # "text", "thinking" or "tool_use"
    text: str = ""
    signature: str = ""
    tool: dict[str, Any] | None = None
    tokens: int = 0


@dataclass
class Reply:
    blocks: list[Block] = field(default_factory=list)
    stop_reason: str = "end_turn"
    stop_sequence: str | None = None
    output_tokens: int = 0
    thinking_tokens: int = 0


def build_reply(req: MessageRequest, directives: Directives) -> Reply:
    return limit(plan(req, directives), req.max_tokens, req.stop_sequences)


def plan(req: MessageRequest, directives: Directives) -> list[Block]:
    """The unconstrained reply, before max_tokens and stop sequences apply."""
    prompt = strip_markers(last_user_text(req)).strip()
    if classifier.ROUTER_MARKER in system_text(req):
        return [_text(classifier.classify(prompt))]
    blocks = [_thinking(req, prompt)] if _thinking_on(req) else []
    tool = _chosen_tool(req, directives)
    if tool is None:
        return [*blocks, _text(_answer_text(req, directives, prompt))]
    forced = (req.tool_choice or {}).get("type") in ("any", "tool")
    if not forced:
        blocks.append(_text(f"I'll use the {tool['name']} tool to help with that."))
    return [*blocks, _tool_use(tool, prompt)]


def _answer_text(req: MessageRequest, directives: Directives, prompt: str) -> str:
    if directives.reply is not None:
        return directives.reply
    if answers_tool_result(req):
        prompt = f"The tool returned {prompt}" if prompt else "The tool finished"
    return textgen.reply_text(prompt, req.model, directives.words)


def _text(text: str) -> Block:
    return Block("text", text=text, tokens=text_tokens(text))


def _thinking_on(req: MessageRequest) -> bool:
    return (req.thinking or {}).get("type") in ("enabled", "adaptive")


def _thinking(req: MessageRequest, prompt: str) -> Block:
    assert req.thinking is not None
    text = textgen.thinking_text(prompt)
    budget = req.thinking.get("budget_tokens")
    if budget:
        text = text[: budget * 4]
    signature = base64.b64encode(hashlib.blake2b(text.encode(), digest_size=48).digest()).decode()
    shown = "" if req.thinking.get("display") == "omitted" else text
    return Block("thinking", text=shown, signature=signature, tokens=text_tokens(text))


def _chosen_tool(req: MessageRequest, directives: Directives) -> dict[str, Any] | None:
    choice = req.tool_choice or {"type": "auto"}
    if not req.tools or choice["type"] == "none":
        return None
    by_name = {t["name"]: t for t in req.tools}
    if choice["type"] == "tool":
        return by_name[choice["name"]]
    wanted = directives.tool_use
    if choice["type"] == "auto" and (wanted is None or answers_tool_result(req)):
        return None
    return by_name.get(wanted or "", req.tools[0])


def _tool_use(tool: dict[str, Any], prompt: str) -> Block:
    hint = " ".join(prompt.split()[:6])
    payload = toolgen.sample_input(tool.get("input_schema") or {}, hint)
    block = {"id": ids.tool_use_id(), "name": tool["name"], "input": payload}
    return Block("tool_use", tool=block, tokens=text_tokens(json.dumps(payload)) + text_tokens(tool["name"]) + 4)


def limit(blocks: list[Block], max_tokens: int, stops: list[str]) -> Reply:
    """Apply stop sequences and the max_tokens budget in generation order."""
    reply = Reply()
    budget = max_tokens
    for block in blocks:
        if block.kind == "text" and stops:
            cut = _stop_cut(block.text, stops)
            if cut is not None and text_tokens(block.text[: cut[0]]) <= budget:
                reply.blocks.append(_text(block.text[: cut[0]]))
                reply.stop_reason, reply.stop_sequence = "stop_sequence", cut[1]
                return _finish(reply, max_tokens)
        if block.tokens > budget:
            _truncate_into(reply, block, budget)
            return _finish(reply, max_tokens)
        reply.blocks.append(block)
        budget -= block.tokens
        if block.kind == "tool_use":
            reply.stop_reason = "tool_use"
    return _finish(reply, max_tokens)


def _stop_cut(text: str, stops: list[str]) -> tuple[int, str] | None:
    hits = [(text.find(s), s) for s in stops if s in text]
    return min(hits) if hits else None


def _truncate_into(reply: Reply, block: Block, budget: int) -> None:
    reply.stop_reason = "max_tokens"
    if block.kind == "tool_use" or budget <= 0:
        return
    if block.kind == "thinking":
        reply.blocks.append(Block("thinking", block.text[: budget * 4], block.signature, tokens=budget))
    else:
        reply.blocks.append(_text(block.text[: budget * 4]))


def _finish(reply: Reply, max_tokens: int) -> Reply:
    used = sum(b.tokens for b in reply.blocks)
    reply.output_tokens = max_tokens if reply.stop_reason == "max_tokens" else used
    reply.thinking_tokens = sum(b.tokens for b in reply.blocks if b.kind == "thinking")
    return reply
