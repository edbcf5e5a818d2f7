"""OpenAPI for the async (streaming) views, which DRF cannot describe by itself (/anthropic's: anthropic_schema.py).

Each stub is a DRF view that is never routed; `document(view, Stub)` hangs it on the async view
as `.cls`, which is what drf-spectacular's endpoint enumerator reads, so the schema lists the
endpoint with the stub's `extend_schema` while requests still go to the async view.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from claudeapp.api.auth import HasScope
from claudeapp.api.message_inputs import MessagesInput
from claudeapp.api.models import Scope
from claudeapp.api.views import PartnerApiView

RATE_HEADERS = "`x-route-model`, `x-route-reason` and `x-ratelimit-{limit,remaining,reset}-*` headers"
SSE = {"text/event-stream": {"type": "string"}}

_usage = inline_serializer(
    "MessageUsage",
    {
        "input_tokens": serializers.IntegerField(),
        "output_tokens": serializers.IntegerField(),
        "cache_creation_input_tokens": serializers.IntegerField(),
        "cache_read_input_tokens": serializers.IntegerField(),
    },
)
GatewayMessage = inline_serializer(
    "GatewayMessage",
    {
        "id": serializers.CharField(allow_null=True),
        "conversation_id": serializers.UUIDField(allow_null=True),
        "status": serializers.CharField(),
        "model": serializers.CharField(),
        "content": serializers.ListField(child=serializers.DictField()),
        "text": serializers.CharField(allow_blank=True),
        "stop_reason": serializers.CharField(allow_null=True),
        "usage": _usage,
        "cost_micros": serializers.IntegerField(),
        "routing_reason": serializers.CharField(allow_blank=True),
        "fallback_reason": serializers.CharField(allow_null=True),
        "upstream_message_id": serializers.CharField(allow_null=True),
    },
)
QueuedTurn = inline_serializer(
    "QueuedTurn",
    {
        "id": serializers.UUIDField(),
        "conversation_id": serializers.UUIDField(),
        "status": serializers.CharField(),
        "job_id": serializers.UUIDField(),
        "message": serializers.CharField(allow_blank=True),
    },
)


class _Stub(PartnerApiView):
    permission_classes = [IsAuthenticated, HasScope(Scope.MESSAGES)]


class MessagesStub(_Stub):
    @extend_schema(
        operation_id="messages_create",
        summary="One turn: stateless, or in one of this key's conversations (JSON, or SSE with stream=true)",
        description=f"Limits, budget, router and ledger apply; the response carries {RATE_HEADERS}. "
        "SSE events: `start`, `delta` {text}, then `done` (the message) or `error`. "
        "In a conversation, when no model can answer now the turn is queued as a job (202).",
        request=MessagesInput,
        responses={
            200: OpenApiResponse(GatewayMessage, description="JSON answer, or an SSE stream when stream=true"),
            202: OpenApiResponse(QueuedTurn, description="Queued as a job (conversation turns only)"),
            402: OpenApiResponse(description="A budget is spent; the message names it and when it resets"),
            502: OpenApiResponse(description="Upstream failed"),
            529: OpenApiResponse(description="No model can answer now (stateless turns; `overloaded_error`)"),
        },
        examples=[
            OpenApiExample(
                "stateless",
                request_only=True,
                value={
                    "model": "auto",
                    "max_tokens": 512,
                    "messages": [{"role": "user", "content": "Hi"}],
                    "metadata": {"team": "support"},
                },
            ),
            OpenApiExample(
                "continue a conversation",
                request_only=True,
                value={"conversation_id": "5f0c6c9e-3d7e-4d59-9a43-0c8f0a3c7d11", "content": "And then?"},
            ),
        ],
    )
    def post(self, request: Request) -> Response:  # pragma: no cover - documentation only
        raise NotImplementedError


def document(view: Callable[..., Any], stub: type[PartnerApiView]) -> Callable[..., Any]:
    view.cls = stub  # type: ignore[attr-defined]
    view.initkwargs = {}  # type: ignore[attr-defined]
    return view
