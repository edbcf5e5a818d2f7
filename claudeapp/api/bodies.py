"""Request bodies for the API: the one JSON parser every partner endpoint uses, DRF views (jobs,
conversations) through `ApiJSONParser`, the async message views through `json_object`.

Whatever arrives answers 400 (or 413), never 500. Refused, with the failing field named:
- nesting deeper than API_MAX_JSON_DEPTH (Python's json raises RecursionError, not ValueError,
  past about a thousand levels, and deep values are a CPU and storage hazard before that);
- NUL (U+0000) anywhere in a key or a string: Postgres text and jsonb refuse it;
- invalid UTF-8 and lone surrogates (`"\\ud800"`): they cannot be encoded to store or forward;
- NaN and +-Infinity (also what `1e400` becomes): not JSON, and no upstream accepts them.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.parsers import JSONParser

from claudeapp.api.errors import RequestTooLarge

NOT_JSON = "Request body is not valid JSON."
NOT_OBJECT = "Request body must be a JSON object."
# Strings, punctuation and bare scalars: enough to follow the nesting path of a body json refused as too deep.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},:]|[^\s\[\]{},:"]+', re.S)


def _invalid(path: tuple[str, ...], message: str) -> exceptions.ValidationError:
    """A 400 naming the field as a dotted path ('messages.0.content'); the top level names no field."""
    return exceptions.ValidationError({".".join(path): [message]} if path else [message])


def too_large() -> RequestTooLarge:
    return RequestTooLarge(f"Request body is too large: the limit is {settings.API_MAX_BODY_BYTES} bytes.")


def parse_json(raw: bytes) -> Any:
    """The body's JSON value, checked as above. ParseError (syntax) or ValidationError (a named field) -> 400."""
    limit = settings.API_MAX_JSON_DEPTH
    # Undecodable bytes become lone surrogates, so one inside a string is refused with its field named.
    text = raw.decode("utf-8", errors="surrogateescape")
    try:
        value = json.loads(text)
    except RecursionError:
        raise _invalid(_deep_path(text, limit), f"Nested deeper than {limit} levels.") from None
    except ValueError:
        raise exceptions.ParseError(NOT_JSON) from None
    _check(value, limit)
    return value


def _check(value: Any, limit: int) -> None:
    if not _clean(value, limit):
        _raise_first_problem(value, limit)


def _clean(value: Any, limit: int) -> bool:
    """The fast pass (no paths): most bodies are fine, and this walk is on every request's path."""
    if type(value) is not dict and type(value) is not list:
        return _fine_text(value) if type(value) is str else type(value) is not float or math.isfinite(value)
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return False
        items = node.items() if type(node) is dict else enumerate(node)
        for key, item in items:
            if type(key) is str and not _fine_text(key):
                return False
            kind = type(item)
            if kind is str:
                if not _fine_text(item):
                    return False
            elif kind is dict or kind is list:
                stack.append((item, depth + 1))
            elif kind is float and not math.isfinite(item):
                return False
    return True


def _fine_text(text: str) -> bool:
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _raise_first_problem(value: Any, limit: int) -> None:
    """The slow pass, only for a body the fast one refused: the first bad field in document order, named."""
    stack: list[tuple[Any, tuple[str, ...], int]] = [(value, (), 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, str):
            _check_text(node, path)
        elif isinstance(node, dict | list):
            if depth > limit:
                raise _invalid(path, f"Nested deeper than {limit} levels.")
            if isinstance(node, dict):
                for key in node:
                    _check_text(key, (*path, _printable(key)))
                children = [(item, (*path, key), depth + 1) for key, item in node.items()]
            else:
                children = [(item, (*path, str(index)), depth + 1) for index, item in enumerate(node)]
            stack.extend(reversed(children))
        elif isinstance(node, float) and not math.isfinite(node):
            raise _invalid(path, "Must be a finite number (NaN and Infinity are not JSON).")


def _check_text(text: str, path: tuple[str, ...]) -> None:
    if "\x00" in text:
        raise _invalid(path, "Must not contain NUL (\\u0000).")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _invalid(path, "Must be valid UTF-8 (no invalid bytes or lone surrogates).") from None


def _printable(key: str) -> str:
    return key.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace").replace("\x00", "\\u0000")


def _deep_path(text: str, limit: int) -> tuple[str, ...]:
    """The path to the first container nested past `limit`, for a body too deep for json to parse."""
    path: list[str] = []
    with contextlib.suppress(IndexError, ValueError):  # json parsed this prefix: only a scanner bug lands here
        _follow(text, limit, path)
    return tuple(path)


def _follow(text: str, limit: int, path: list[str]) -> None:
    kinds: list[str] = []
    expect_key = False
    for match in _TOKEN.finditer(text):
        piece = match.group()
        if piece in "{[":
            if len(kinds) >= limit:
                return
            kinds.append(piece)
            expect_key = piece == "{"
            if piece == "[":
                path.append("0")
        elif piece in "}]":
            if kinds.pop() == "[" or not expect_key:
                path.pop()
            expect_key = False
        elif piece == ",":
            if kinds and kinds[-1] == "[":
                path[-1] = str(int(path[-1]) + 1)
            else:
                path.pop()
                expect_key = True
        elif expect_key and piece.startswith('"'):
            try:
                path.append(_printable(json.loads(piece)))
            except ValueError:
                path.append(piece[1:-1])
            expect_key = False


def read_body(request: HttpRequest) -> bytes:
    """The raw body, read at most API_MAX_BODY_BYTES + 1 bytes far: bigger is a 413, however it was sent.

    The API's own cap applies instead of Django's DATA_UPLOAD_MAX_MEMORY_SIZE, which would refuse
    image-bearing message bodies far below Anthropic's limits. (Under ASGI the body is also counted
    while it arrives, see claudeapp/api/bodycap.py; this covers every other way a request is built.)"""
    if hasattr(request, "_body"):
        raw = request.body
    else:
        raw = request.read(settings.API_MAX_BODY_BYTES + 1)
        request._body = raw  # so a later `request.body` returns it instead of raising RawPostDataException
    if len(raw) > settings.API_MAX_BODY_BYTES:
        raise too_large()
    return raw


def json_object(request: HttpRequest) -> dict[str, Any]:
    """The body as a JSON object, or a 400 (ParseError / ValidationError) or 413, for async views."""
    parsed = parse_json(read_body(request) or b"null")
    if not isinstance(parsed, dict):
        raise exceptions.ParseError(NOT_OBJECT)
    return parsed


class ApiJSONParser(JSONParser):
    """DRF's parser for every partner view: the same checks as `json_object`, and a JSON object at the top."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read(settings.API_MAX_BODY_BYTES + 1) if stream is not None else b""
        if len(raw) > settings.API_MAX_BODY_BYTES:
            raise too_large()
        parsed = parse_json(raw)
        if not isinstance(parsed, dict):
            raise exceptions.ParseError(NOT_OBJECT)
        return parsed
