"""OpenAPI for the /anthropic surface (async views: never-routed DRF stubs hung on them with
`async_schema.document`). Request headers (`anthropic-version`, `anthropic-beta`,
`x-gateway-retries`), response headers, statuses and the Message Batches shapes; docs/api.md says
the same in prose."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from claudeapp.api.anthropic_version import VERSION_PARAMETER
from claudeapp.api.auth import HasScope
from claudeapp.api.message_inputs import AnthropicMessagesInput, CountTokensInput
from claudeapp.api.models import Scope
from claudeapp.api.views import PartnerApiView

HEADER = OpenApiParameter.HEADER
VERSION = VERSION_PARAMETER
BETA = OpenApiParameter(
    "anthropic-beta",
    OpenApiTypes.STR,
    HEADER,
    description="Comma-separated betas, sent upstream as is.",
)
RETRIES = OpenApiParameter(
    "x-gateway-retries",
    OpenApiTypes.STR,
    HEADER,
    enum=["0"],
    description="`0`: one upstream attempt on the routed model, no gateway retry and no fallback.",
)


def _response_header(name: str, description: str, statuses: list[int]) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.STR, HEADER, description=description, response=statuses)


_LIMIT_HEADERS = [
    _response_header(
        f"anthropic-ratelimit-{axis}-{part}",
        f"{part} of the tighter of the key's and upstream's {axis} limit" + (" (RFC 3339)" if part == "reset" else ""),
        [200, 429],
    )
    for axis in ("requests", "tokens", "input-tokens", "output-tokens")
    for part in ("limit", "remaining", "reset")
]
_FALLBACK_HEADERS = [
    _response_header("x-gateway-fallback-from", "The model asked first, when another one answered", [200]),
    _response_header("x-gateway-fallback-reason", "Why each model before it did not answer", [200]),
]
_CALL_ERRORS = {
    402: OpenApiResponse(description="`billing_error`: a budget of the key cannot take the worst case"),
    413: OpenApiResponse(description="`request_too_large`: the body cap, or upstream's 413"),
    429: OpenApiResponse(description="`rate_limit_error`: a limit of the key (named), or upstream's; retry-after"),
    502: OpenApiResponse(description="`api_error`: upstream unreachable or cut"),
    529: OpenApiResponse(description="`overloaded_error`: upstream overloaded on every model tried"),
}

_usage = inline_serializer(
    "AnthropicUsage",
    {
        "input_tokens": serializers.IntegerField(),
        "output_tokens": serializers.IntegerField(),
        "cache_creation_input_tokens": serializers.IntegerField(),
        "cache_read_input_tokens": serializers.IntegerField(),
        "cache_creation": serializers.DictField(required=False),
        "service_tier": serializers.CharField(required=False),
        "server_tool_use": serializers.DictField(required=False),
        "output_tokens_details": serializers.DictField(required=False),
    },
)
AnthropicMessage = inline_serializer(
    "AnthropicMessage",
    {
        "id": serializers.CharField(allow_null=True),
        "type": serializers.CharField(),
        "role": serializers.CharField(),
        "model": serializers.CharField(),
        "content": serializers.ListField(child=serializers.DictField()),
        "stop_reason": serializers.CharField(allow_null=True),
        "stop_sequence": serializers.CharField(allow_null=True),
        "usage": _usage,
    },
)
_counts = inline_serializer(
    "MessageBatchRequestCounts",
    {name: serializers.IntegerField() for name in ("processing", "succeeded", "errored", "canceled", "expired")},
)
MessageBatch = inline_serializer(
    "MessageBatch",
    {
        "id": serializers.CharField(),
        "type": serializers.CharField(),
        "processing_status": serializers.ChoiceField(choices=["in_progress", "canceling", "ended"]),
        "request_counts": _counts,
        "created_at": serializers.DateTimeField(),
        "expires_at": serializers.DateTimeField(allow_null=True),
        "ended_at": serializers.DateTimeField(allow_null=True),
        "cancel_initiated_at": serializers.DateTimeField(allow_null=True),
        "archived_at": serializers.DateTimeField(allow_null=True),
        "results_url": serializers.URLField(allow_null=True),
    },
)
MessageBatchPage = inline_serializer(
    "MessageBatchPage",
    {
        "data": serializers.ListField(child=MessageBatch),
        "has_more": serializers.BooleanField(),
        "first_id": serializers.CharField(allow_null=True),
        "last_id": serializers.CharField(allow_null=True),
    },
)
BatchCreateInput = inline_serializer(
    "MessageBatchCreate",
    {
        "requests": serializers.ListField(
            child=inline_serializer(
                "MessageBatchRequest",
                {"custom_id": serializers.CharField(max_length=64), "params": AnthropicMessagesInput()},
            ),
            min_length=1,
        )
    },
)
_MESSAGE = {"model": "claude-sonnet-5-5", "max_tokens": 256, "messages": [{"role": "user", "content": "Hello"}]}


class _Stub(PartnerApiView):
    permission_classes = [IsAuthenticated, HasScope(Scope.MESSAGES)]


class AnthropicMessagesStub(_Stub):
    @extend_schema(
        operation_id="anthropic_messages_create",
        summary="Anthropic Messages API (JSON, or Anthropic's SSE events with stream=true)",
        description="Anthropic's request and response shapes and error types; `model` may also be an alias or "
        "`auto`. Fields the gateway does not read (tools, thinking, cache_control, ...) go upstream untouched; "
        "fields naming an upstream URL are refused. docs/api.md, 'Anthropic-compatible surface'.",
        parameters=[VERSION, BETA, RETRIES, *_LIMIT_HEADERS, *_FALLBACK_HEADERS],
        request=AnthropicMessagesInput,
        responses={200: AnthropicMessage, **_CALL_ERRORS},
        examples=[OpenApiExample("create", request_only=True, value=_MESSAGE)],
    )
    def post(self, request: Request) -> Response:  # pragma: no cover - documentation only
        raise NotImplementedError


class CountTokensStub(_Stub):
    @extend_schema(
        operation_id="anthropic_count_tokens",
        summary="Count input tokens (upstream's count_tokens; `auto` counts with the default tier)",
        parameters=[VERSION, BETA],
        request=CountTokensInput,
        responses=inline_serializer("TokenCount", {"input_tokens": serializers.IntegerField()}),
        examples=[
            OpenApiExample(
                "count",
                request_only=True,
                value={"model": "claude-haiku-5-5", "messages": [{"role": "user", "content": "Hello"}]},
            )
        ],
    )
    def post(self, request: Request) -> Response:  # pragma: no cover
        raise NotImplementedError


class BatchesStub(_Stub):
    @extend_schema(
        operation_id="anthropic_batches_list",
        summary="This key's Message Batches, newest first",
        parameters=[
            VERSION,
            OpenApiParameter("limit", OpenApiTypes.INT, description="1-1000, default 20"),
            OpenApiParameter("after_id", OpenApiTypes.STR, description="Page to older batches"),
            OpenApiParameter("before_id", OpenApiTypes.STR, description="Page to newer batches"),
        ],
        responses={200: MessageBatchPage},
    )
    def get(self, request: Request) -> Response:  # pragma: no cover
        raise NotImplementedError

    @extend_schema(
        operation_id="anthropic_batches_create",
        summary="Create a Message Batch: every request validated, routed, limited and held at the batch price",
        parameters=[VERSION, BETA],
        request=BatchCreateInput,
        responses={200: MessageBatch, 402: _CALL_ERRORS[402], 429: _CALL_ERRORS[429]},
        examples=[
            OpenApiExample("create", request_only=True, value={"requests": [{"custom_id": "a", "params": _MESSAGE}]})
        ],
    )
    def post(self, request: Request) -> Response:  # pragma: no cover
        raise NotImplementedError


class BatchStub(_Stub):
    @extend_schema(
        operation_id="anthropic_batches_retrieve",
        summary="One Message Batch (its results are billed once it has ended)",
        parameters=[VERSION],
        responses={200: MessageBatch},
    )
    def get(self, request: Request, batch_id: str) -> Response:  # pragma: no cover
        raise NotImplementedError

    @extend_schema(
        operation_id="anthropic_batches_delete",
        summary="Delete an ended Message Batch (its results are billed first); one still processing is a 400",
        parameters=[VERSION],
        responses={
            200: inline_serializer(
                "DeletedMessageBatch",
                {"id": serializers.CharField(), "type": serializers.ChoiceField(choices=["message_batch_deleted"])},
            ),
            400: OpenApiResponse(description="Still processing: cancel it first and wait for it to end"),
        },
    )
    def delete(self, request: Request, batch_id: str) -> Response:  # pragma: no cover
        raise NotImplementedError


class BatchCancelStub(_Stub):
    @extend_schema(
        operation_id="anthropic_batches_cancel",
        summary="Cancel a Message Batch: unprocessed requests end `canceled` and their holds come back",
        parameters=[VERSION],
        request=None,
        responses={200: MessageBatch},
    )
    def post(self, request: Request, batch_id: str) -> Response:  # pragma: no cover
        raise NotImplementedError


class BatchResultsStub(_Stub):
    @extend_schema(
        operation_id="anthropic_batches_results",
        summary="An ended batch's results: JSONL, one {custom_id, result} per line, as upstream wrote them",
        parameters=[VERSION],
        responses={(200, "application/x-jsonl"): OpenApiTypes.STR},
    )
    def get(self, request: Request, batch_id: str) -> Response:  # pragma: no cover
        raise NotImplementedError
