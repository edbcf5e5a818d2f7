"""The partner portal: a key owner's keys, usage, limits, webhook secret and statements, in the browser.
Thin views: parse, one service or selector call, render. Secrets (a new key) are rendered in the POST's
own response, never put in a redirect, a message cookie or a log."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from claudeapp.api.models import Scope
from claudeapp.portal import selectors, services
from claudeapp.portal.errors import PortalRefused


def _keys_page(request: HttpRequest, *, status: int = 200, **extra: Any) -> HttpResponse:
    owner = request.user
    context = {
        "section": "keys",
        "keys": selectors.keys_of(owner),
        "allowance": selectors.allowance_of(owner),
        "scopes": Scope.choices,
        "limits": selectors.limits(owner),
        "secrets": selectors.webhook_secrets(owner),
        **extra,
    }
    response = render(request, "portal/keys.html", context, status=status)
    if "shown_key" in extra:
        response["Cache-Control"] = "no-store"  # the page holds a key shown once
    return response


@login_required
@require_GET
def keys_page(request: HttpRequest) -> HttpResponse:
    return _keys_page(request)


@login_required
@require_POST
def create_key(request: HttpRequest) -> HttpResponse:
    try:
        key, raw = services.create_key(
            owner=request.user, name=request.POST.get("name", ""), scopes=request.POST.getlist("scopes")
        )
    except PortalRefused as exc:
        return _keys_page(request, status=400, refused=str(exc), refused_field=exc.field)
    return _keys_page(request, shown_key=raw, shown_for=key)


@login_required
@require_POST
def rotate_key(request: HttpRequest, key_id: int) -> HttpResponse:
    key, raw = services.rotate_key(owner=request.user, key_id=key_id)
    return _keys_page(request, shown_key=raw, shown_for=key)


@login_required
@require_POST
def revoke_key(request: HttpRequest, key_id: int) -> HttpResponse:
    canceled = services.revoke_key(owner=request.user, key_id=key_id)
    messages.success(request, f"Key revoked; {canceled} queued job(s) canceled.")
    return redirect("portal:keys")


@login_required
@require_POST
def rotate_webhook_secret(request: HttpRequest, key_id: int) -> HttpResponse:
    services.rotate_webhook_secret(owner=request.user, key_id=key_id)
    messages.success(request, "New webhook signing secret; the previous one keeps signing during its grace period.")
    return redirect("portal:keys")


@login_required
@require_POST
def send_test_event(request: HttpRequest, key_id: int) -> HttpResponse:
    try:
        delivery = services.send_test_event(owner=request.user, key_id=key_id, url=request.POST.get("url", ""))
    except PortalRefused as exc:
        return _keys_page(request, status=400, refused=str(exc), refused_field=exc.field)
    return _keys_page(request, test_delivery=delivery, test_key_id=key_id)


@login_required
@require_POST
def set_budget_alerts(request: HttpRequest, key_id: int, budget_id: int) -> HttpResponse:
    try:
        services.set_budget_alerts(
            owner=request.user,
            key_id=key_id,
            budget_id=budget_id,
            thresholds=request.POST.get("thresholds", ""),
            url=request.POST.get("webhook_url", ""),
        )
    except PortalRefused as exc:
        return _keys_page(request, status=400, refused=str(exc), refused_field=exc.field)
    messages.success(request, "Budget alerts saved: each threshold POSTs a signed event to your URL once per period.")
    return redirect("portal:keys")


@login_required
@require_POST
def clear_budget_alerts(request: HttpRequest, key_id: int, budget_id: int) -> HttpResponse:
    services.clear_budget_alerts(owner=request.user, key_id=key_id, budget_id=budget_id)
    messages.success(request, "Budget alerts removed.")
    return redirect("portal:keys")


@login_required
@require_GET
def usage_page(request: HttpRequest) -> HttpResponse:
    context = {
        "section": "usage",
        "usage": selectors.usage(request.user),
        "months": selectors.months_billed(request.user),
    }
    return render(request, "portal/usage.html", context)


@login_required
@require_GET
def calls_page(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/calls.html", {"section": "calls", "calls": selectors.recent_calls(request.user)})


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
@require_GET
def statement_csv(request: HttpRequest) -> HttpResponse:
    try:
        month = dt.datetime.strptime(request.GET.get("month", ""), "%Y-%m").date()
    except ValueError:
        return HttpResponseBadRequest("month: expected YYYY-MM.", content_type="text/plain")
    writer = csv.writer(_Echo())

    def rows() -> Iterator[str]:
        yield writer.writerow(selectors.STATEMENT_COLUMNS)
        for row in selectors.statement(request.user, month=month):
            yield writer.writerow(row)

    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="statement-{month:%Y-%m}.csv"'
    return response
