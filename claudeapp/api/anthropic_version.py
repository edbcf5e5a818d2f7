"""`anthropic-version` and `anthropic-beta` on the /anthropic surface, as Anthropic applies them.

Every /anthropic call names the API version it was written against; a missing or unknown one is a
400 before anything else runs. The version decides which body fields are allowed (2026-10-21 dropped
the sampling parameters and two block placements; docs/api.md), and both headers travel upstream with
the call, so upstream applies the same version and betas the caller asked for.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from django.http import HttpRequest, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.request import Request

from claudeapp.api.errors import ErrorInfo, response_for

V2023 = "2023-06-01"  # anthropic SDK <= 1.x
V2026 = "2026-10-21"  # anthropic SDK >= 2.0
VERSIONS = (V2023, V2026)
SAMPLING_LIMITS = {"temperature": 1.0, "top_p": 1.0}
SAMPLING_KEYS = ("temperature", "top_p", "top_k")

AsyncView = Callable[..., Awaitable[HttpResponse]]

# The request header as OpenAPI documents it, on every /anthropic operation.
VERSION_PARAMETER = OpenApiParameter(
    "anthropic-version",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    enum=list(VERSIONS),
    description="The API version the call is written for (SDK 1.x: 2023-06-01, 2.x: 2026-10-21); "
    "missing or unknown: 400. Sent upstream as is.",
)


class VersionRefused(Exception):
    """A missing or unknown `anthropic-version` on a DRF view of /anthropic (400, registered in errors)."""


def version_problem(version: str | None) -> str | None:
    """Anthropic's message for a missing or unknown version, or None when it is one of ours."""
    if version is None or not version.strip():
        return "anthropic-version: header is required"
    if version not in VERSIONS:
        return f"anthropic-version: invalid version '{version}'; supported: {', '.join(VERSIONS)}"
    return None


def upstream_headers(request: HttpRequest) -> dict[str, str]:
    """The headers that go upstream with the caller's call: its version and its betas."""
    headers = {"anthropic-version": request.META["HTTP_ANTHROPIC_VERSION"]}
    beta = request.META.get("HTTP_ANTHROPIC_BETA", "").strip()
    if beta:
        headers["anthropic-beta"] = ",".join(part.strip() for part in beta.split(",") if part.strip())
    return headers


def version_required(view: AsyncView) -> AsyncView:
    """Refuse a call without a known `anthropic-version` (after the key check, as Anthropic does)."""

    @functools.wraps(view)
    async def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        problem = version_problem(request.META.get("HTTP_ANTHROPIC_VERSION"))
        if problem is not None:
            return response_for(request, ErrorInfo(400, "invalid_request_error", problem))
        return await view(request, *args, **kwargs)

    return checked


class VersionRequiredMixin:
    """The same rule for the DRF views of /anthropic (models): after the key and scope checks, as
    Anthropic orders them, a missing or unknown version is the same 400 as on /v1/messages."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        problem = version_problem(request.META.get("HTTP_ANTHROPIC_VERSION"))
        if problem is not None:
            raise VersionRefused(problem)


def check_body(body: Mapping[str, Any], version: str) -> None:
    """The body rules that differ by version; serializers.ValidationError (400 naming the field)."""
    if version == V2026:
        for key in SAMPLING_KEYS:
            if key in body:
                message = f"is not supported with anthropic-version {version}; remove it"
                raise serializers.ValidationError({key: [message]})
    else:
        _check_sampling(body)
    if version == V2026:
        _check_blocks(body.get("messages"))


def _check_sampling(body: Mapping[str, Any]) -> None:
    for key, upper in SAMPLING_LIMITS.items():
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= upper:
            raise serializers.ValidationError({key: [f"Input should be a number between 0 and {upper:g}"]})
    top_k = body.get("top_k")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0):
        raise serializers.ValidationError({"top_k": ["Input should be a non-negative integer"]})


def _check_blocks(messages: Any) -> None:
    """2026-10-21: no `document` blocks in assistant turns, no `citations` on user text blocks."""
    if not isinstance(messages, list):
        return  # the body's own validation names what is wrong with it
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), list):
            continue
        role = message.get("role")
        for j, block in enumerate(message["content"]):
            if not isinstance(block, dict):
                continue
            path = f"messages.{i}.content.{j}"
            if block.get("type") == "document" and role == "assistant":
                raise serializers.ValidationError(
                    {path: [f"document blocks are not allowed in assistant turns with anthropic-version {V2026}"]}
                )
            if block.get("type") == "text" and role == "user" and "citations" in block:
                raise serializers.ValidationError(
                    {f"{path}.citations": [f"is not supported on user text blocks with anthropic-version {V2026}"]}
                )
