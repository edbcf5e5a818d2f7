"""Identifiers shaped like the real ones (msg_…, req_…, msgbatch_…, toolu_…)."""

from __future__ import annotations

import os

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"  # base58


def _random_chars(n: int) -> str:
    value = int.from_bytes(os.urandom(16), "big")
    out = []
    for _ in range(n):
        value, rem = divmod(value, 58)
        out.append(_ALPHABET[rem])
    return "".join(out)


def message_id() -> str:
    return "msg_01" + _random_chars(22)


def request_id() -> str:
    return "req_011C" + _random_chars(20)


def batch_id() -> str:
    return "msgbatch_01" + _random_chars(22)


def tool_use_id() -> str:
    return "toolu_01" + _random_chars(22)
