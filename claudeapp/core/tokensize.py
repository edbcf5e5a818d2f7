"""The gateway's one estimate of a text's size in tokens, before Claude's tokenizer has seen it.

An upper bound: one token per 3 bytes of UTF-8, rounded up. A token of Claude's tokenizers covers
~3.5-4 bytes of English and code and never less than one byte of anything (docs/billing.md gives the
measured error), so the figure is never below the real count for ordinary text and at most ~35% above
it. Budget holds, the output bound of a cut stream, routing thresholds and context trimming all use
it, so the router sees the size the hold was taken for, and a prompt the trimming kept fits the hold.
Upstream's exact count replaces it wherever one is available (count_tokens, usage).
"""

from __future__ import annotations

import json
from typing import Any

BYTES_PER_TOKEN = 3


def text_tokens(text: str) -> int:
    return -(-len(text.encode("utf-8", "surrogatepass")) // BYTES_PER_TOKEN)


def json_tokens(value: Any) -> int:
    """A JSON value as upstream sees it in a prompt (compact, non-ASCII kept)."""
    return text_tokens(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str))
