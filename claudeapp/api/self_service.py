"""Self-service for the calling key: its limits and budgets (with its own budget alerts), key rotation,
the webhook signing secret.

No scope is needed (like /me): a partner must always be able to see what limits it and to replace a
key it fears leaked. Thin views: parse, one service or selector call, render.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors as billing_selectors
from claudeapp.api import budget_alerts, keys
from claudeapp.api.views import PartnerApiView
from claudeapp.jobs.webhooks import SecretInfo


class BudgetOutput(serializers.Serializer):
    id = serializers.IntegerField()
    scope = serializers.ChoiceField(choices=["global", "user", "partner_key", "group"])
    scope_id = serializers.IntegerField(allow_null=True)
    period = serializers.ChoiceField(choices=["day", "month"])
    limit_micros = serializers.IntegerField()
    spent_micros = serializers.IntegerField(help_text="Billed this period")
    held_micros = serializers.IntegerField(help_text="Held for calls still running (their worst case)")
    remaining_micros = serializers.IntegerField(help_text="limit - spent - held: what a new call may hold")
    period_start = serializers.DateTimeField()
    resets_at = serializers.DateTimeField()
    alerts = budget_alerts.AlertsOutput(
        allow_null=True, help_text="Your own alerts on this budget (PUT /api/v1/limits/budgets/{id}/alerts), or null"
    )


class AxisOutput(serializers.Serializer):
    axis = serializers.ChoiceField(choices=["requests", "input-tokens", "output-tokens", "concurrent"])
    limit = serializers.IntegerField(help_text="Per minute; for `concurrent`, at once")
    used = serializers.IntegerField(allow_null=True, help_text="Null when the limiter cannot be read")
    remaining = serializers.IntegerField(allow_null=True)
    reset_seconds = serializers.IntegerField(allow_null=True, help_text="Until the whole limit is free again")


class RatePolicyOutput(serializers.Serializer):
    id = serializers.IntegerField()
    scope = serializers.CharField(help_text="Whose policy: your key, your user, a group, `default`, `global`, `model`")
    model = serializers.CharField(allow_null=True, help_text="Null: every model")
    axes = AxisOutput(many=True)


class LimitsOutput(serializers.Serializer):
    budgets = BudgetOutput(many=True)
    rate_limits = RatePolicyOutput(many=True)


class LimitsApi(PartnerApiView):
    @extend_schema(
        operation_id="limits",
        summary="Your budgets (limit, spent, held, remaining, reset) and rate limits with current use",
        responses=LimitsOutput,
    )
    def get(self, request: Request) -> Response:
        principal = request._request.principal  # type: ignore[attr-defined]
        budgets = billing_selectors.budget_status(principal)
        budget_alerts.attach(principal=principal, budgets=budgets)
        body = {"budgets": budgets, "rate_limits": billing_selectors.rate_limit_status(principal)}
        return Response(LimitsOutput(body).data)


_NO_ALERTS = OpenApiResponse(description="No alerts of yours, or no such budget covers the key")
_ALERT_EXAMPLE = {"thresholds": [50, 80, 100], "webhook_url": "https://hooks.example.com/budget"}


class BudgetAlertsApi(PartnerApiView):
    """Your own alerts on a budget covering your key, apart from the operator's: each threshold crossed
    POSTs `budget.threshold_reached` to your URL once per period, signed like job webhooks."""

    @extend_schema(
        operation_id="limits_budget_alerts_get",
        summary="Your alerts on this budget",
        responses={200: budget_alerts.AlertsOutput, 404: _NO_ALERTS},
    )
    def get(self, request: Request, budget_id: int) -> Response:
        found = budget_alerts.get(principal=request._request.principal, budget_id=budget_id)  # type: ignore[attr-defined]
        return Response(budget_alerts.AlertsOutput(budget_alerts.output(found)).data)

    @extend_schema(
        operation_id="limits_budget_alerts_set",
        summary="Set your thresholds (1-100 % of the limit) and webhook URL (a public http(s) URL) on this budget",
        request=budget_alerts.AlertsInput,
        responses={200: budget_alerts.AlertsOutput, 404: OpenApiResponse(description="No such budget covers the key")},
        examples=[OpenApiExample("set", request_only=True, value=_ALERT_EXAMPLE)],
    )
    def put(self, request: Request, budget_id: int) -> Response:
        principal = request._request.principal  # type: ignore[attr-defined]
        found = budget_alerts.set_alerts(principal=principal, budget_id=budget_id, data=request.data)
        return Response(budget_alerts.AlertsOutput(budget_alerts.output(found)).data)

    @extend_schema(
        operation_id="limits_budget_alerts_delete",
        summary="Remove your alerts from this budget",
        responses={204: None, 404: _NO_ALERTS},
    )
    def delete(self, request: Request, budget_id: int) -> Response:
        _no_body(request)
        budget_alerts.clear_alerts(principal=request._request.principal, budget_id=budget_id)  # type: ignore[attr-defined]
        return Response(status=204)


def _no_body(request: Request) -> None:
    """These take no body; one that is sent still goes through the API's parser, so a malformed or
    hostile body is the same 400/413 as everywhere, and nothing is rotated."""
    request.data  # noqa: B018 - parsing is the point


class WebhookSecretOutput(serializers.Serializer):
    secret = serializers.CharField(help_text="HMAC-SHA256 key of the X-Gateway-Signature header")
    previous_valid_until = serializers.DateTimeField(
        allow_null=True, help_text="After a rotation the previous secret also signs (a second v1) until then"
    )
    rotated_at = serializers.DateTimeField(allow_null=True)


def _secret(info: SecretInfo) -> dict[str, Any]:
    return WebhookSecretOutput(info).data  # type: ignore[return-value]


class RotatedKeyOutput(serializers.Serializer):
    key = serializers.CharField(help_text="The new key. Shown once: store it now")
    masked = serializers.CharField()
    previous_key_valid_until = serializers.DateTimeField(
        allow_null=True, help_text="The old key keeps working until then (the operator sets the grace period)"
    )
    webhook_secret = WebhookSecretOutput()


class KeyRotateApi(PartnerApiView):
    @extend_schema(
        operation_id="keys_current_rotate",
        summary="Rotate the calling key: a new secret for the same key; the old one works for a grace period",
        request=None,
        responses={201: RotatedKeyOutput},
        examples=[
            OpenApiExample(
                "rotated",
                response_only=True,
                status_codes=["201"],
                value={
                    "key": "cgw_GllCuomVRQsr_p7uQ2…OyR8",
                    "masked": "cgw_GllCuomVRQsr_…OyR8",
                    "previous_key_valid_until": "2026-12-03T06:00:00Z",
                    "webhook_secret": {"secret": "whsec_…", "previous_valid_until": None, "rotated_at": None},
                },
            )
        ],
    )
    def post(self, request: Request) -> Response:
        _no_body(request)
        key, raw = keys.rotate_key(key=request.auth)
        body = {
            "key": raw,
            "masked": key.masked,
            "previous_key_valid_until": key.previous_valid_until,
            "webhook_secret": keys.webhook_secret(key=key),
        }
        return Response(RotatedKeyOutput(body).data, status=201, headers={"Cache-Control": "no-store"})


class WebhookSecretApi(PartnerApiView):
    @extend_schema(
        operation_id="keys_current_webhook_secret",
        summary="The signing secret of your job webhooks (verify X-Gateway-Signature with it)",
        responses=WebhookSecretOutput,
    )
    def get(self, request: Request) -> Response:
        return Response(_secret(keys.webhook_secret(key=request.auth)), headers={"Cache-Control": "no-store"})


class WebhookSecretRotateApi(PartnerApiView):
    @extend_schema(
        operation_id="keys_current_webhook_secret_rotate",
        summary="A new webhook signing secret; the old one keeps signing alongside it for a grace period",
        request=None,
        responses={201: OpenApiResponse(WebhookSecretOutput, description="The new secret")},
    )
    def post(self, request: Request) -> Response:
        _no_body(request)
        info = keys.rotate_webhook_secret(key=request.auth)
        return Response(_secret(info), status=201, headers={"Cache-Control": "no-store"})
