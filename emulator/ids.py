"""Identifiers shaped like the real ones (msg_…, req_…, msgbatch_…, toolu_…)."""

from __future__ import annotations

import base64
import os

# Real ids are base58-like: map the two URL-safe base64 punctuation characters onto letters.
_NO_PUNCTUATION = bytes.maketrans(b"-_", b"xz")


def _random_chars(n: int) -> str:
    raw = base64.urlsafe_b64encode(os.urandom((n * 3 + 3) // 4))
    return raw.translate(_NO_PUNCTUATION)[:n].decode()


def message_id() -> str:
    return "msg_01" + _random_chars(22)


def request_id() -> str:
    return "req_011C" + _random_chars(20)


def batch_id() -> str:
    return "msgbatch_01" + _random_chars(22)


def tool_use_id() -> str:
    return "toolu_01" + _random_chars(22)
