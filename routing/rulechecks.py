"""Checks on one RoutingRule's own fields (regex, tags, conditions), below both the model and the
compiled rules: RoutingRule.clean() runs them, rules.py compiles what they let through."""

from __future__ import annotations

import re
from typing import Any

from routing import regexguard
from routing.errors import UnsafeRegex


def parse_tags(text: str) -> tuple[tuple[str, str], ...]:
    """'bulk=true, team=legal' -> (('bulk', 'true'), ('team', 'legal')). Raises ValueError on a bad pair."""
    pairs = []
    for part in re.split(r"[,\n]", text):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected key=value, got {part.strip()!r}")
        pairs.append((key.strip(), value.strip()))
    return tuple(pairs)


def field_errors(row: Any) -> dict[str, str]:
    """Errors keyed by field, for everything but whether the target model exists (the model checks that)."""
    errors: dict[str, str] = {}
    if row.message_regex:
        try:
            regexguard.validate(row.message_regex)
        except UnsafeRegex as exc:
            errors["message_regex"] = exc.why
    try:
        parse_tags(row.metadata_tags)
    except ValueError as exc:
        errors["metadata_tags"] = str(exc)
    if row.target and row.classify:
        errors["classify"] = "Pick a target model or the classifier, not both."
    low, high = row.min_input_tokens, row.max_input_tokens
    if low is not None and high is not None and low > high:
        errors["max_input_tokens"] = "Must be at least the minimum."
    if not (row.target or row.classify or row.mode):
        errors["target"] = "A rule must do something: set a target, the classifier, or a mode."
    return errors
