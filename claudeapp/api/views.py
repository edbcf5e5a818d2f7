"""The first partner endpoints. Thin: parse, call a selector, render."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from claudeapp.api import selectors
from claudeapp.api.anthropic_version import VERSION_PARAMETER, VersionRequiredMixin
from claudeapp.api.auth import HasScope
from claudeapp.api.bodies import ApiJSONParser
from claudeapp.api.models import Scope
from claudeapp.api.pagination import page_body


class PartnerApiView(APIView):
    """Base of every partner DRF view: key auth only, JSON in and out, the API's error shape."""

    authentication_classes = [import_string(path) for path in settings.API_AUTHENTICATION_CLASSES]
    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]
    parser_classes = [ApiJSONParser]


class LongContextPricing(serializers.Serializer):
    above_input_tokens = serializers.IntegerField()
    input_per_mtok_micros = serializers.IntegerField()
    output_per_mtok_micros = serializers.IntegerField()
    cache_write_5m_per_mtok_micros = serializers.IntegerField()
    cache_write_1h_per_mtok_micros = serializers.IntegerField()
    cache_read_per_mtok_micros = serializers.IntegerField()


class ModelPricing(serializers.Serializer):
    currency = serializers.CharField()
    unit = serializers.CharField()
    input_per_mtok_micros = serializers.IntegerField()
    output_per_mtok_micros = serializers.IntegerField()
    cache_write_5m_per_mtok_micros = serializers.IntegerField()
    cache_write_1h_per_mtok_micros = serializers.IntegerField()
    cache_read_per_mtok_micros = serializers.IntegerField()
    batch_discount_percent = serializers.IntegerField()
    long_context = LongContextPricing(allow_null=True, help_text="Prices for every token once the prompt passes it")
    effective_from = serializers.DateTimeField()


class ModelsApi(PartnerApiView):
    permission_classes = [IsAuthenticated, HasScope(Scope.MODELS)]

    class ModelOutput(serializers.Serializer):
        id = serializers.CharField()
        display_name = serializers.CharField()
        family = serializers.CharField()
        context_window = serializers.IntegerField()
        max_output_tokens = serializers.IntegerField()
        aliases = serializers.ListField(child=serializers.CharField())
        retires_on = serializers.DateField(allow_null=True)
        pricing = ModelPricing(allow_null=True, help_text="Null: not priced yet, so calls to it are refused")

    @extend_schema(
        operation_id="models_list",
        responses=inline_serializer(
            "ModelList",
            {
                "data": ModelOutput(many=True),
                "has_more": serializers.BooleanField(),
                "next": serializers.URLField(allow_null=True),
                "previous": serializers.URLField(allow_null=True),
            },
        ),
        summary="Models this gateway serves, with their prices",
    )
    def get(self, request: Request) -> Response:
        rows = selectors.list_models(with_prices=True)
        return Response(page_body(self.ModelOutput(rows, many=True).data))


class MeApi(PartnerApiView):
    class MeOutput(serializers.Serializer):
        name = serializers.CharField()
        key = serializers.CharField(source="masked")
        owner = serializers.CharField(source="owner.username")
        scopes = serializers.ListField(child=serializers.CharField())
        created_at = serializers.DateTimeField()
        expires_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(operation_id="me", responses=MeOutput, summary="The calling key: name, owner, scopes, expiry")
    def get(self, request: Request) -> Response:
        return Response(self.MeOutput(request.auth).data)


_ANTHROPIC_MODEL_FIELDS = {
    "type": serializers.ChoiceField(choices=["model"]),
    "id": serializers.CharField(),
    "display_name": serializers.CharField(),
    "created_at": serializers.CharField(),
    "max_input_tokens": serializers.IntegerField(help_text="The context window"),
    "max_tokens": serializers.IntegerField(help_text="The largest max_tokens the model takes"),
    "lifecycle": serializers.ChoiceField(choices=["active", "deprecated"]),
    "deprecated_at": serializers.CharField(allow_null=True),
    "retires_at": serializers.CharField(allow_null=True, help_text="Scheduled retirement, RFC 3339"),
}
# One serializer for both endpoints: drf-spectacular names a schema component by its serializer, and two
# inline ones of the same name are two components with one name (check --deploy warns).
AnthropicModelSchema = inline_serializer("AnthropicModel", _ANTHROPIC_MODEL_FIELDS)


class AnthropicModelsApi(VersionRequiredMixin, PartnerApiView):
    """`GET /anthropic/v1/models`, in Anthropic's page shape, so the official SDK can list models."""

    permission_classes = [IsAuthenticated, HasScope(Scope.MODELS)]

    class QueryInput(serializers.Serializer):
        limit = serializers.IntegerField(min_value=1, max_value=1000, default=20)
        after_id = serializers.CharField(required=False, max_length=100)
        before_id = serializers.CharField(required=False, max_length=100)

    @extend_schema(
        operation_id="anthropic_models_list",
        parameters=[VERSION_PARAMETER, QueryInput],
        summary="Anthropic-compatible models list",
        responses=inline_serializer(
            "AnthropicModelPage",
            {
                "data": serializers.ListField(child=AnthropicModelSchema),
                "has_more": serializers.BooleanField(),
                "first_id": serializers.CharField(allow_null=True),
                "last_id": serializers.CharField(allow_null=True),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        query = self.QueryInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(
            selectors.anthropic_models_page(
                limit=query.validated_data["limit"],
                after_id=query.validated_data.get("after_id"),
                before_id=query.validated_data.get("before_id"),
            )
        )


class AnthropicModelApi(VersionRequiredMixin, PartnerApiView):
    permission_classes = [IsAuthenticated, HasScope(Scope.MODELS)]

    @extend_schema(
        operation_id="anthropic_models_retrieve",
        parameters=[VERSION_PARAMETER, OpenApiParameter("model_id", str, OpenApiParameter.PATH)],
        responses=AnthropicModelSchema,
        summary="Anthropic-compatible model lookup (ids and aliases)",
    )
    def get(self, request: Request, model_id: str) -> Response:
        found = selectors.anthropic_model(model_id)
        if found is None:
            raise exceptions.NotFound(f"model: {model_id}")
        return Response(found)
