"""The request log in the console: read-only, filterable, principals by name; and its settings row."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from billing import money, selectors
from billing.admin import DatePresetFilter, PrincipalFilter, principal_search
from claudeapp.requestlog import buffer, services
from claudeapp.requestlog.models import RequestLog, RequestLogSettings


class OutcomeFilter(admin.SimpleListFilter):
    """Statuses grouped as the health console counts them: ran, ok, errors, refused."""

    title = "outcome"
    parameter_name = "outcome"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(value, label) for value, (label, _) in services.OUTCOMES.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        outcome = services.OUTCOMES.get(self.value() or "")
        return queryset if outcome is None else queryset.filter(outcome[1])


@admin.register(RequestLog)
class RequestLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "principal", "surface", "status_badge", "route", "short_reason", "tokens", "cost",
                    "duration", "request_id"]  # fmt: skip
    list_filter = [
        OutcomeFilter,
        "status",
        DatePresetFilter,
        PrincipalFilter,
        "surface",
        "http_status",
        "model_used",
        "principal_kind",
    ]
    search_fields = ["=request_id", "=upstream_request_id", "error_type", "model_used", "route_reason"]
    show_full_result_count = False
    list_per_page = 50

    def get_queryset(self, request: HttpRequest) -> QuerySet[RequestLog]:
        return selectors.with_principal_names(super().get_queryset(request))

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        found, duplicates = super().get_search_results(request, queryset, search_term)
        return found | principal_search(queryset, search_term), duplicates

    @admin.display(description="principal", ordering="principal_id")
    def principal(self, obj: RequestLog) -> str:
        return selectors.principal_link(obj)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: RequestLog) -> str:
        code = f" {obj.http_status}" if obj.http_status else ""
        error = f" · {obj.error_type}" if obj.error_type else ""
        return f"{obj.get_status_display()}{code}{error}"

    @admin.display(description="route")
    def route(self, obj: RequestLog) -> str:
        used = obj.model_used or obj.model_requested or "—"
        if obj.route_decision_id:
            url = reverse("admin:routing_routingdecision_change", args=[obj.route_decision_id])
            return format_html('<a href="{}">{}</a>', url, used)
        return used

    @admin.display(description="reason")
    def short_reason(self, obj: RequestLog) -> str:
        text = obj.route_reason or obj.error_type or ""
        return format_html('<span title="{}">{}</span>', text, text)

    @admin.display(description="tokens in/out")
    def tokens(self, obj: RequestLog) -> str:
        return f"{obj.input_tokens:,} / {obj.output_tokens:,}"

    @admin.display(description="cost", ordering="cost_micros")
    def cost(self, obj: RequestLog) -> str:
        return money.usd(obj.cost_micros)

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, obj: RequestLog) -> str:
        return "" if obj.duration_ms is None else f"{obj.duration_ms:,.0f} ms"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(RequestLogSettings)
class RequestLogSettingsAdmin(admin.ModelAdmin):
    """One row: the list goes straight to it."""

    fields = ["retention_days", "store_prompts", "updated_at"]
    readonly_fields = ["updated_at"]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        row = services.get_settings()
        return HttpResponseRedirect(reverse("admin:requestlog_requestlogsettings_change", args=[row.pk]))

    def save_model(self, request: HttpRequest, obj: RequestLogSettings, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        buffer.forget_settings()  # this process applies it at once; the others within 10 s

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
