"""Endpoints that exist only in tests: they exercise the API's plumbing before the real
message endpoints arrive. Mounted by tests/api/urls.py under the same prefixes."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from billing.errors import BudgetExceeded, RateLimited
from claudeapp.api.auth import HasScope, partner_key_required
from claudeapp.api.bodies import json_object
from claudeapp.api.errors import Conflict, error_response_for
from claudeapp.api.models import PartnerKey
from claudeapp.api.pagination import ApiCursorPagination, filter_date_range
from claudeapp.api.views import PartnerApiView
from claudeapp.claude.errors import NoModelAvailable


class MessageInput(serializers.Serializer):
    role = serializers.ChoiceField(choices=["user", "assistant"])
    content = serializers.CharField()


class EchoApi(PartnerApiView):
    permission_classes = [IsAuthenticated, HasScope("messages")]

    class Input(serializers.Serializer):
        model = serializers.CharField(max_length=100)
        max_tokens = serializers.IntegerField(min_value=1, max_value=64_000)
        messages = serializers.ListField(child=serializers.DictField(), min_length=1)
        turns = MessageInput(many=True, required=False)
        metadata = serializers.DictField(required=False)

    def post(self, request: Request) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        return Response({"ok": True, "principal": request.principal.key})


def _raise(name: str) -> None:
    import datetime as dt

    if name == "budget":
        raise BudgetExceeded(
            scope="principal",
            scope_id=1,
            limit_micros=10,
            spent_micros=11,
            resets_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        )
    if name in ("budget-spent", "budget-partly"):
        spent = 1000 if name == "budget-spent" else 700
        raise BudgetExceeded(
            scope="partner_key", scope_id=1, limit_micros=1000, spent_micros=spent, budget_id=7, period="month",
            held_micros=200, requested_micros=400, resets_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        )  # fmt: skip
    if name == "ratelimit-named":
        raise RateLimited(retry_after_seconds=2.2, axis="output-tokens", scope="partner_key", limit_value=8000)
    if name == "upstream429":
        from claudeapp.claude.errors import UpstreamRateLimited

        raise NoModelAvailable(models=["claude-opus-5-5"], last_error=UpstreamRateLimited("slow", retry_after=60))
    if name == "ratelimit":
        raise RateLimited(
            retry_after_seconds=2.2, headers={"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0"}
        )
    if name == "nomodel":
        raise NoModelAvailable(models=["claude-opus-5-5"])
    if name == "conflict":
        raise Conflict()
    raise RuntimeError("boom: a bug, not the caller's fault")


class RaiseApi(PartnerApiView):
    def get(self, request: Request, name: str) -> Response:
        _raise(name)
        return Response({})


class KeyListApi(PartnerApiView):
    pagination_class = ApiCursorPagination

    def get(self, request: Request) -> Response:
        queryset = filter_date_range(PartnerKey.objects.filter(owner=request.user), request.query_params)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response([{"name": key.name} for key in page])


@partner_key_required("messages")
async def async_echo(request: HttpRequest) -> JsonResponse:
    try:
        body = json_object(request)
    except ParseError as exc:
        return error_response_for(request, exc)
    return JsonResponse({"user": request.user.username, "principal": request.principal.key, "keys": sorted(body)})


@partner_key_required()
async def async_raise(request: HttpRequest, name: str) -> JsonResponse:
    _raise(name)
    return JsonResponse({})
