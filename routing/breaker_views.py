"""Operators' view of the circuit breakers: state per enabled model, and a manual close.

Staff with routing.view_model see the page; closing a circuit takes routing.change_model. A staff
user without the permission gets 403; anyone else the admin login.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from claudeapp.claude import breaker
from routing.models import Model


@staff_member_required
@permission_required("routing.view_model", raise_exception=True)
def breakers(request: HttpRequest) -> HttpResponse:
    rows = [(model, breaker.state(model.model_id)) for model in Model.objects.filter(enabled=True)]
    context = {**admin.site.each_context(request), "title": "Circuit breakers", "rows": rows}
    return render(request, "routing/breakers.html", context)


@staff_member_required
@permission_required("routing.change_model", raise_exception=True)
@require_POST
def breaker_reset(request: HttpRequest, model_id: str) -> HttpResponse:
    breaker.reset(model_id)
    messages.success(request, f"Circuit for {model_id} closed; the next request goes upstream.")
    return redirect("breakers")
