"""Request bodies for the API: JSON parsing that answers 400, never 500, whatever arrives.

Python's json module raises RecursionError (not ValueError) on deeply nested input such as
`{"a":{"a":...`, which DRF's own parser lets through as a 500.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.parsers import JSONParser

NOT_JSON = "Request body is not valid JSON."


class ApiJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise exceptions.ParseError(NOT_JSON) from exc


def read_body(request: HttpRequest) -> bytes:
    """The raw body. The API's own cap (API_MAX_BODY_BYTES, checked by ApiBoundaryMiddleware on
    Content-Length) applies instead of Django's DATA_UPLOAD_MAX_MEMORY_SIZE, which would refuse
    image-bearing message bodies far below Anthropic's limits."""
    if hasattr(request, "_body"):
        return request.body
    raw = request.read()
    request._body = raw  # so a later `request.body` returns it instead of raising RawPostDataException
    return raw


def json_object(request: HttpRequest) -> dict[str, Any]:
    """The body as a JSON object, or a ParseError (400 invalid_request_error) for async views."""
    try:
        parsed = json.loads(read_body(request) or b"null")
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise exceptions.ParseError(NOT_JSON) from exc
    if not isinstance(parsed, dict):
        raise exceptions.ParseError("Request body must be a JSON object.")
    return parsed
