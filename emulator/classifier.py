"""Router classification heuristic, used when the system prompt contains ROUTER-CLASSIFY-V1.

The emulator then answers with exactly one label for the last user message, checked in order:

- ``bulk``: batch-shaped work: "for each of the following …", "summarize these 500 …", many
  rows/records/items, or a long list / CSV-like block (20+ lines, or 10+ comma-separated lines).
- ``complex``: code (fences, ``def``/``class``/``SELECT``, tracebacks), analysis / design /
  proof / debugging / multi-step reasoning words, or a long prompt (over 1,500 characters or 250 words).
- ``simple``: greetings and thanks, translations, and short factual questions (12 words or fewer).
- ``moderate``: everything else.
"""

from __future__ import annotations

import re

ROUTER_MARKER = "ROUTER-CLASSIFY-V1"
LABELS = ("simple", "moderate", "complex", "bulk")

_BULK = re.compile(
    r"\bfor (each|every) (of the )?(following|row|item|line|record|entry|file|document)s?\b"
    r"|\b(these|the following|all)\s+\d{2,}\b"
    r"|\b\d{2,}\s+(rows|records|items|reviews|emails|tickets|documents|files|lines|entries|products)\b"
    r"|\bin bulk\b|\bbatch (of|job)\b",
    re.IGNORECASE,
)
_CODE = re.compile(r"```|\b(def|class|function|SELECT|import|return|Traceback|Exception)\b|[{};]\s*$", re.M)
_REASONING = re.compile(
    r"\b(analy[sz]e|analysis|design|architect\w*|prove|proof|derive|optimi[sz]e|debug|refactor|implement"
    r"|algorithm|trade-?offs?|step[- ]by[- ]step|compare and contrast|evaluate|strategy|plan for|why does)\b",
    re.IGNORECASE,
)
_GREETING = re.compile(r"^\s*(hi|hello|hey|thanks|thank you|good (morning|afternoon|evening))\b", re.I)
_SIMPLE = re.compile(r"\b(translate|translation|capital of|define|what is|who is|when did|how many)\b", re.I)


def classify(text: str) -> str:
    """Return one of simple|moderate|complex|bulk for a user message."""
    lines = [line for line in text.splitlines() if line.strip()]
    if _BULK.search(text) or len(lines) >= 20 or sum(line.count(",") >= 2 for line in lines) >= 10:
        return "bulk"
    words = len(text.split())
    if _CODE.search(text) or _REASONING.search(text) or len(text) > 1500 or words > 250:
        return "complex"
    if _GREETING.search(text) or (words <= 12 and (_SIMPLE.search(text) or text.rstrip().endswith("?"))):
        return "simple"
    return "moderate"
