"""Hostile request bodies, one builder per kind, shared by the hardening matrix and the schemathesis run.

Each kind turns a valid JSON body (and the dotted path of its text field) into bytes that must be
refused before anything goes upstream: the expected status, and the field the error must name.
"""

from __future__ import annotations

import json

import httpx

TEXT = "Say hello."
OVER_CAP = 12 * 1024 * 1024  # the web process runs with the default 10 MB API_MAX_BODY_BYTES
DEEP = 100_000


def _with(body: dict, **extra) -> bytes:
    return json.dumps({**body, **extra}).encode()  # NaN is written as NaN, NUL as \u0000


def _text_replaced(body: dict, replacement: bytes) -> bytes:
    return json.dumps(body).encode().replace(json.dumps(TEXT).encode(), replacement, 1)


# kind -> (bytes from (valid body, its text field), sent chunked?, status, the field the error names or None;
# "{text}" stands for the text field). The body-level kinds (size, top-level type) name no field.
KINDS = {
    "chunked-oversize": (lambda b, f: _with(b, metadata={"pad": "x" * OVER_CAP}), True, 413, None),
    "content-length-oversize": (lambda b, f: _with(b, metadata={"pad": "x" * OVER_CAP}), False, 413, None),
    "nul-in-key": (lambda b, f: _with(b, metadata={"a\x00b": "x"}), False, 400, "metadata.a\\u0000b"),
    "nul-in-value": (lambda b, f: _text_replaced(b, b'"Say\\u0000hello."'), False, 400, "{text}"),
    "deep-json": (
        lambda b, f: _with(b, metadata="DEEP").replace(b'"DEEP"', b'{"a":' * DEEP + b"1" + b"}" * DEEP),
        False, 400, "metadata" + ".a" * 63),
    "nan": (lambda b, f: _with(b, metadata={"score": float("nan")}), False, 400, "metadata.score"),
    "invalid-utf8": (lambda b, f: _text_replaced(b, b'"Say \xff\xfe hello."'), False, 400, "{text}"),
    "non-object": (lambda b, f: b"[" + _with(b) + b"]", False, 400, None),
}  # fmt: skip


def send(url: str, method: str, body: bytes, *, chunked: bool, key: str) -> httpx.Response:
    # anthropic-version: every /anthropic call names one (the /api/v1 endpoints ignore it)
    headers = {"x-api-key": key, "content-type": "application/json", "anthropic-version": "2023-06-01"}
    if chunked:  # a generator has no length: httpx sends Transfer-Encoding: chunked
        content = (body[i : i + 65536] for i in range(0, len(body), 65536))
        return httpx.request(method, url, content=content, headers=headers, timeout=60)
    return httpx.request(method, url, content=body, headers=headers, timeout=60)
