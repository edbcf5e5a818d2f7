"""`GET /api/v1/usage`: spend and tokens by day and model from billing's daily rollups.

`?scope=key` (default) is this key's own usage; `?scope=owner` is everything billed to the key's
owner: the owner's browser use plus every key they own, which is what a user-level budget counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from billing.models import DailyRollup, LedgerEntry
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
    kind = serializers.ChoiceField(
        choices=["calls", "classifier"],
        help_text="`calls`: your requests; `classifier`: the router's classification calls made for them (billed)",
    )
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


class UsageGrandTotals(UsageTotals):
    classifier = UsageTotals(help_text="The classifier's part of the totals")


class UsageOutput(serializers.Serializer):
    scope = serializers.CharField()
    data = UsageRow(many=True)
    totals = UsageGrandTotals()


def _principals(request: Request, scope: str) -> Q:
    key: PartnerKey = request.auth  # type: ignore[assignment]
    if scope == "key":
        return Q(principal_kind="partner_key", principal_id=key.pk)
    key_ids = PartnerKey.objects.filter(owner_id=key.owner_id).values("pk")
    return Q(principal_kind="user", principal_id=key.owner_id) | Q(
        principal_kind="partner_key", principal_id__in=key_ids
    )


def usage_rows(request: Request, scope: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows by (day, model, kind) and totals. `kind` is `calls` (the partner's own requests) or
    `classifier` (the router's classification calls made for them, billed to them as their own line)."""
    who = _principals(request, scope)
    rows = _in_range(DailyRollup.objects.filter(who), request)
    everything = list(rows.values("day", "model_id").annotate(**{f: Sum(f) for f in FIGURES}))
    classified = list(_in_range(_classifier_days(who), request).values("day", "model_id").annotate(
        requests=Count("id"), **{f: Sum(f) for f in FIGURES if f != "requests"}
    ))  # fmt: skip
    by_key = {(row["day"], row["model_id"]): row for row in classified}
    data = []
    for row in everything:
        less = by_key.get((row["day"], row["model_id"]))
        calls = {f: (row[f] or 0) - ((less or {}).get(f) or 0) for f in FIGURES}
        if any(calls.values()):
            data.append({"day": row["day"], "model_id": row["model_id"], "kind": "calls", **calls})
    data += [{"day": r["day"], "model_id": r["model_id"], "kind": "classifier", **_figures(r)} for r in classified]
    data.sort(key=lambda r: (-r["day"].toordinal(), r["model_id"], r["kind"]))
    totals = _sum(row for row in data)
    totals["classifier"] = _sum(row for row in data if row["kind"] == "classifier")
    return data[:MAX_ROWS], totals


def _in_range(queryset: QuerySet[Any], request: Request) -> QuerySet[Any]:
    return filter_date_range(queryset, request.query_params, field="day", after="start", before="end")


def _classifier_days(who: Q) -> QuerySet[LedgerEntry]:
    day = TruncDate("created_at", tzinfo=ZoneInfo(settings.BILLING_TIME_ZONE))  # the rollups' billing day
    return LedgerEntry.objects.filter(who, kind=LedgerEntry.Kind.CLASSIFICATION).annotate(day=day)


def _figures(row: dict[str, Any]) -> dict[str, int]:
    return {f: row.get(f) or 0 for f in FIGURES}


def _sum(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    totals = dict.fromkeys(FIGURES, 0)
    for row in rows:
        for f in FIGURES:
            totals[f] += row[f]
    return totals


class UsageApi(PartnerApiView):
    permission_classes = [IsAuthenticated, HasScope(Scope.USAGE)]

    @extend_schema(
        operation_id="usage",
        summary="Spend and tokens by day, model and kind (your calls, the router's classifier), with totals",
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
                            "kind": "calls",
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
                        "classifier": {
                            "requests": 0,
                            "input_tokens": 0,
                            "output_tokens": 0,
                            "cache_write_5m_tokens": 0,
                            "cache_write_1h_tokens": 0,
                            "cache_read_tokens": 0,
                            "cost_micros": 0,
                        },
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
