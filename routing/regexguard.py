"""Save-time safety checks for the operator-written regex a routing rule matches the last user message with.

Python's `re` cannot be interrupted, and a rule's regex runs on every routed request, so a
catastrophically backtracking pattern (`(a+)+b`, `\\w+\\s*\\w+\\s*!`) would hang a web worker. Every
pattern is therefore checked before it is saved: it must compile, be short, have no unbounded
repeat inside another one, and finish quickly on adversarial probe texts as long as the longest
text it will ever see (the router only ever searches the first ROUTER_REGEX_MAX_CHARS characters).
The probe runs in a child process so a pathological pattern is killed rather than hanging the admin.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

from django.conf import settings

from routing.errors import UnsafeRegex

MAX_PATTERN_CHARS = 500
PROBE_LIMIT_SECONDS = 0.1  # a sane pattern takes microseconds; 100 ms on one probe means backtracking
PROBE_WALL_SECONDS = 2.0

try:  # the parser moved in 3.11; both names exist on the supported versions
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]

_REPEATS = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT}

_PROBE_SCRIPT = """
import json, re, sys, time
pattern, texts = json.loads(sys.stdin.read())
rx = re.compile(pattern)
worst = 0.0
for text in texts:
    start = time.perf_counter()
    rx.search(text)
    worst = max(worst, time.perf_counter() - start)
print(worst)
"""


def validate(pattern: str) -> re.Pattern[str]:
    """Compile `pattern` or raise UnsafeRegex saying why it is refused."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise UnsafeRegex(pattern, f"longer than {MAX_PATTERN_CHARS} characters")
    try:
        compiled = re.compile(pattern)
        tree = sre_parse.parse(pattern)
    except re.error as exc:
        raise UnsafeRegex(pattern, f"does not compile: {exc}") from exc
    if _has_nested_unbounded_repeat(tree, inside=False):
        raise UnsafeRegex(pattern, "an unbounded repeat inside another one (e.g. (a+)+) can backtrack forever")
    _probe(pattern)
    return compiled


def _has_nested_unbounded_repeat(tree, *, inside: bool) -> bool:  # type: ignore[no-untyped-def]
    for op, arg in tree:
        for sub, unbounded in _children(op, arg):
            if unbounded and inside:
                return True
            if _has_nested_unbounded_repeat(sub, inside=inside or unbounded):
                return True
    return False


def _children(op, arg):  # type: ignore[no-untyped-def]
    """(subpattern, is-an-unbounded-repeat) pairs below one parsed node."""
    if op in _REPEATS or op == getattr(sre_parse, "POSSESSIVE_REPEAT", None):
        _low, high, sub = arg
        # Possessive repeats never backtrack, so they do not count as nesting risk.
        return [(sub, high == sre_parse.MAXREPEAT and op in _REPEATS)]
    if op == sre_parse.SUBPATTERN:
        return [(arg[-1], False)]
    if op == sre_parse.BRANCH:
        return [(branch, False) for branch in arg[1]]
    if op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
        return [(arg[1], False)]
    if op == getattr(sre_parse, "ATOMIC_GROUP", None):
        return [(arg, False)]
    if op == sre_parse.GROUPREF_EXISTS:
        return [(b, False) for b in arg[1:] if b is not None]
    return []


def probe_texts(pattern: str) -> list[str]:
    """Texts that make backtracking patterns slow: long runs of characters the pattern can consume."""
    size = settings.ROUTER_REGEX_MAX_CHARS
    chars = {"a", " ", "0", "\n", ".", "-", "_"} | {c for c in pattern if c.isprintable() and c not in "\\()[]{}|*+?^$"}
    texts = [c * size for c in sorted(chars)]
    texts += [("a " * size)[:size], ("a0" * size)[:size], ("a\n" * size)[:size]]
    return texts


def _probe(pattern: str) -> None:
    payload = json.dumps([pattern, probe_texts(pattern)])
    try:
        done = subprocess.run(  # noqa: S603  (our own interpreter and a fixed script; the pattern is data)
            [sys.executable, "-c", _PROBE_SCRIPT],
            input=payload,
            capture_output=True,
            text=True,
            timeout=PROBE_WALL_SECONDS,
            check=True,
        )
    except subprocess.TimeoutExpired as exc:
        raise UnsafeRegex(pattern, "too slow on a long probe text (catastrophic backtracking)") from exc
    except subprocess.CalledProcessError as exc:
        raise UnsafeRegex(pattern, f"probe failed: {exc.stderr.strip()[-200:]}") from exc
    if float(done.stdout.strip() or 0) > PROBE_LIMIT_SECONDS:
        raise UnsafeRegex(pattern, "too slow on a long probe text (catastrophic backtracking)")
