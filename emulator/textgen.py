"""Deterministic, readable stand-in replies derived from the prompt.

Same prompt + model -> same text; different prompts -> different text (the reply quotes the
prompt and picks its templates from a hash of it). Replies say they come from the emulator.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

STOPWORDS = frozenset(
    [
        "about",
        "above",
        "after",
        "again",
        "also",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "cannot",
        "could",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "from",
        "further",
        "have",
        "having",
        "here",
        "into",
        "itself",
        "just",
        "more",
        "most",
        "other",
        "over",
        "same",
        "should",
        "some",
        "such",
        "than",
        "that",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "under",
        "until",
        "very",
        "what",
        "when",
        "where",
        "which",
        "while",
        "will",
        "with",
        "would",
        "your",
        "yours",
        "please",
        "tell",
        "explain",
        "give",
        "write",
        "make",
        "want",
        "need",
        "help",
        "know",
        "like",
        "something",
        "thing",
        "things",
        "really",
        "list",
        "steps",
        "step",
        "show",
        "quick",
        "short",
        "example",
        "question",
        "answer",
    ]
)
_PIECE = re.compile(r"\s*\S+\s*")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'-]{3,}")
_GREETING = re.compile(r"^\s*(hi|hello|hey|good (morning|afternoon|evening))\b", re.I)

OPENINGS = (
    "You asked: “{quote}”.",
    "Thanks for your message: “{quote}”.",
    "Here is a reply to “{quote}”.",
    "Good question: “{quote}”.",
)
EMULATOR_NOTES = (
    "This answer comes from the offline Claude emulator, so no real model read it, "
    "but the reply is shaped like a real one.",
    "I'm the offline Claude emulator standing in for {model}; the words below are generated "
    "deterministically from your prompt.",
    "No network call was made: the offline Claude emulator wrote this stand-in answer.",
)
BODIES = (
    "A useful way to approach {topic} is to separate what is already known from what still needs "
    "checking, then work through the open points one at a time.",
    "When people ask about {topic}, the short answer usually depends on context: the constraints, "
    "the audience and how much precision is needed.",
    "The core of {topic} fits in a few sentences: define the terms, state the assumptions, and test "
    "them against a small example before generalising.",
    "Thinking about {topic}, it helps to start from a concrete case and only then look for the general rule.",
)
LIST_INTROS = ("A few points worth considering:", "Here is a short outline:", "Steps you could take:")
LIST_ITEMS = (
    "Clarify what *{word}* means in your situation.",
    "Check the assumptions behind **{word}**.",
    "Try a small example involving {word} first.",
    "Write down what a good outcome for {word} looks like.",
    "Compare two or three options before committing.",
    "Revisit the result once you have more detail.",
)
CLOSINGS = (
    "If you share more detail, a fuller answer could go deeper.",
    "Let me know which part you would like to expand.",
    "Happy to continue from here.",
    "That should be enough to get started.",
)
FILLER = (
    "Each part of the question can be examined on its own before the pieces are combined.",
    "Small, concrete examples make the general idea easier to check.",
    "It is worth writing down the assumptions so they can be revisited later.",
    "A second pass usually reveals details that the first one missed.",
    "Clear definitions prevent most of the confusion that follows.",
)


def _seed(*parts: str) -> int:
    return int.from_bytes(hashlib.blake2b("\x00".join(parts).encode(), digest_size=8).digest(), "big")


def _quote(prompt: str, limit: int = 12) -> str:
    words = prompt.split()
    if not words:
        return "your message"
    text = " ".join(words[:limit]).replace("“", '"').replace("”", '"')
    return text + ("…" if len(words) > limit else "")


def _topic_words(prompt: str) -> list[str]:
    seen: list[str] = []
    for word in _WORD.findall(prompt):
        lower = word.lower().strip("'-")
        if lower not in STOPWORDS and lower not in seen:
            seen.append(lower)
    return seen[:3]


@lru_cache(maxsize=4096)
def reply_text(prompt: str, model: str, words: int | None = None) -> str:
    """The assistant reply for `prompt`; `words` forces an exact word count (the [[words:N]] marker)."""
    seed = _seed(model, prompt)
    if _GREETING.match(prompt) and len(prompt.split()) <= 4:
        text = _greeting(model, seed)
    else:
        text = _answer(prompt, model, seed)
    return _fit_words(text, words, seed) if words is not None else text


def _greeting(model: str, seed: int) -> str:
    return (
        "Hello! I'm the offline Claude emulator, answering in place of "
        f"{model}. Ask me anything and I'll reply with a deterministic stand-in answer. "
        + CLOSINGS[seed % len(CLOSINGS)]
    )


def _answer(prompt: str, model: str, seed: int) -> str:
    topics = _topic_words(prompt)
    topic = " and ".join(f"**{t}**" for t in topics[:2]) or "this"
    first = " ".join(
        (
            OPENINGS[seed % len(OPENINGS)].format(quote=_quote(prompt)),
            EMULATOR_NOTES[(seed >> 4) % len(EMULATOR_NOTES)].format(model=model),
        )
    )
    parts = [first, BODIES[(seed >> 8) % len(BODIES)].format(topic=topic)]
    if (seed >> 12) % 3 == 0 or "list" in prompt.lower() or "steps" in prompt.lower():
        parts.append(_bullets(topics or ["the question"], seed))
    parts.append(CLOSINGS[(seed >> 16) % len(CLOSINGS)])
    return "\n\n".join(parts)


def _bullets(topics: list[str], seed: int) -> str:
    start = (seed >> 20) % len(LIST_ITEMS)
    items = [LIST_ITEMS[(start + i) % len(LIST_ITEMS)].format(word=topics[i % len(topics)]) for i in range(3)]
    return LIST_INTROS[(seed >> 24) % len(LIST_INTROS)] + "\n\n" + "\n".join(f"- {item}" for item in items)


def _fit_words(text: str, words: int, seed: int) -> str:
    pieces = _PIECE.findall(text)
    i = seed
    while len(pieces) < words:
        pieces.extend(_PIECE.findall(" " + FILLER[i % len(FILLER)]))
        i += 1
    return "".join(pieces[:words]).rstrip()


def thinking_text(prompt: str) -> str:
    return (
        f"The user wrote “{_quote(prompt, 8)}”. I am the offline emulator, so I will acknowledge the "
        "request, name the main topic, and give a short, structured answer."
    )
