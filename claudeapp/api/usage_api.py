"""`GET /api/v1/usage`: spend and tokens by day and model from billing's daily rollups.

`?scope=key` (default) is this key's own usage; `?scope=owner` is everything billed to the key's
owner: the owner's browser use plus every key they own, which is what a user-level budget counts.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, Sum
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from billing.models import DailyRollup
from claudeapp.api.auth import HasScope
from claudeapp.api.models import PartnerKey, Scope
from claudeapp.api.pagination import filter_date_range
from claudeapp.api.views import PartnerApiView

FIGURES = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "cache_read_tokens",
    "cost_micros",
)
MAX_ROWS = 5000


class UsageQuery(serializers.Serializer):
    scope = serializers.ChoiceField(choices=["key", "owner"], default="key")
    start = serializers.CharField(required=False, help_text="ISO date, inclusive (billing days, UTC)")
    end = serializers.CharField(required=False, help_text="ISO date, inclusive")


class UsageRow(serializers.Serializer):
    day = serializers.DateField()
    model = serializers.CharField(source="model_id")
    requests = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_write_5m_tokens = serializers.IntegerField()
    cache_write_1h_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    cost_micros = serializers.IntegerField()


class UsageTotals(serializers.Serializer):
    requests = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_write_5m_tokens = serializers.IntegerField()
    cache_write_1h_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    cost_micros = serializers.IntegerField()


class UsageOutput(serializers.Serializer):
    scope = serializers.CharField()
    data = UsageRow(many=True)
    totals = UsageTotals()


def _principals(request: Request, scope: str) -> Q:
    key: PartnerKey = request.auth  # type: ignore[assignment]
    if scope == "key":
        return Q(principal_kind="partner_key", principal_id=key.pk)
    key_ids = PartnerKey.objects.filter(owner_id=key.owner_id).values("pk")
    return Q(principal_kind="user", principal_id=key.owner_id) | Q(
        principal_kind="partner_key", principal_id__in=key_ids
    )


def usage_rows(request: Request, scope: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    rows = filter_date_range(
        DailyRollup.objects.filter(_principals(request, scope)),
        request.query_params,
        field="day",
        after="start",
        before="end",
    )
    by_day_model = rows.values("day", "model_id").annotate(**{f: Sum(f) for f in FIGURES}).order_by("-day", "model_id")
    data = list(by_day_model[:MAX_ROWS])
    totals = rows.aggregate(**{f: Sum(f) for f in FIGURES})
    return data, {f: totals[f] or 0 for f in FIGURES}


class UsageApi(PartnerApiView):
    permission_classes = [IsAuthenticated, HasScope(Scope.USAGE)]

    @extend_schema(
        operation_id="usage",
        summary="Spend and tokens by day and model, with totals",
        parameters=[UsageQuery],
        responses=UsageOutput,
        examples=[
            OpenApiExample(
                "a day of usage",
                value={
                    "scope": "key",
                    "data": [
                        {
                            "day": "2026-05-01",
                            "model": "claude-sonnet-5-5",
                            "requests": 3,
                            "input_tokens": 120,
                            "output_tokens": 900,
                            "cache_write_5m_tokens": 0,
                            "cache_write_1h_tokens": 0,
                            "cache_read_tokens": 0,
                            "cost_micros": 13860,
                        }
                    ],
                    "totals": {
                        "requests": 3,
                        "input_tokens": 120,
                        "output_tokens": 900,
                        "cache_write_5m_tokens": 0,
                        "cache_write_1h_tokens": 0,
                        "cache_read_tokens": 0,
                        "cost_micros": 13860,
                    },
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request) -> Response:
        query = UsageQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        scope = query.validated_data["scope"]
        data, totals = usage_rows(request, scope)
        return Response({"scope": scope, "data": UsageRow(data, many=True).data, "totals": totals})
