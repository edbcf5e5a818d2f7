"""Scripting markers hidden in prompt text: [[name]] or [[name:argument]].

Recognised names: fault, latency, ttft, chunk-ms, should-retry, retry-after, retry-after-ms,
batch, reply, words, tool-use. Unknown names and malformed numbers are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MARKER = re.compile(r"\[\[([a-z][a-z-]*)(?::([^\]]*))?\]\]")


@dataclass
class Directives:
    faults: list[str] = field(default_factory=list)
    latency_ms: float | None = None
    ttft_ms: float | None = None
    chunk_ms: float | None = None
    should_retry: str | None = None
    retry_after: str | None = None
    retry_after_ms: str | None = None
    batch: str | None = None
    reply: str | None = None
    words: int | None = None
    tool_use: str | None = None  # "" = any tool, else the tool's name


EMPTY = Directives()
_NUMBERS = {"latency": "latency_ms", "ttft": "ttft_ms", "chunk-ms": "chunk_ms"}
_STRINGS = {
    "should-retry": "should_retry",
    "retry-after": "retry_after",
    "retry-after-ms": "retry_after_ms",
    "batch": "batch",
    "reply": "reply",
}


def parse(text: str) -> Directives:
    if "[[" not in text:
        return EMPTY
    found = Directives()
    for name, arg in MARKER.findall(text):
        _apply(found, name, arg.strip())
    return found


def _apply(found: Directives, name: str, arg: str) -> None:
    if name == "fault" and arg:
        found.faults.append(arg)
    elif name in _NUMBERS:
        number = _number(arg)
        if number is not None:
            setattr(found, _NUMBERS[name], number)
    elif name in _STRINGS and arg:
        setattr(found, _STRINGS[name], arg)
    elif name == "words":
        number = _number(arg)
        found.words = int(number) if number is not None else None
    elif name == "tool-use":
        found.tool_use = arg


def _number(arg: str) -> float | None:
    try:
        value = float(arg)
    except ValueError:
        return None
    return value if value >= 0 else None


def strip_markers(text: str) -> str:
    return MARKER.sub("", text) if "[[" in text else text
