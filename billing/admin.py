from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from billing.models import (
    Budget,
    BudgetAlert,
    DailyRollup,
    LedgerEntry,
    PriceVersion,
    RateLimitPolicy,
    Reservation,
    SpendDashboard,
)


def _dollars(micros: int | None) -> str:
    return "" if micros is None else f"${micros / 1e6:,.4f}".rstrip("0").rstrip(".")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by billing's services: viewable, never added, edited or deleted here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(PriceVersion)
class PriceVersionAdmin(admin.ModelAdmin):
    list_display = ["model", "effective_from", "input", "output", "write_5m", "write_1h", "read"]
    list_filter = ["model__family", "model"]
    list_select_related = ["model"]
    date_hierarchy = "effective_from"
    fieldsets = [
        (None, {"fields": ["model", "effective_from", "note"]}),
        (
            "Micro-dollars per million tokens ($2.50 = 2500000)",
            {
                "fields": [
                    "input_micros",
                    "output_micros",
                    "cache_write_5m_micros",
                    "cache_write_1h_micros",
                    "cache_read_micros",
                    "batch_discount_percent",
                ]
            },
        ),
        (
            "Long-context band: the whole request at these prices when its prompt exceeds the threshold",
            {
                "classes": ["collapse"],
                "fields": [
                    "band_threshold_tokens",
                    "band_input_micros",
                    "band_output_micros",
                    "band_cache_write_5m_micros",
                    "band_cache_write_1h_micros",
                    "band_cache_read_micros",
                ],
            },
        ),
    ]

    @admin.display(description="in $/MTok")
    def input(self, obj: PriceVersion) -> str:
        return _dollars(obj.input_micros)

    @admin.display(description="out $/MTok")
    def output(self, obj: PriceVersion) -> str:
        return _dollars(obj.output_micros)

    @admin.display(description="5m write")
    def write_5m(self, obj: PriceVersion) -> str:
        return _dollars(obj.cache_write_5m_micros)

    @admin.display(description="1h write")
    def write_1h(self, obj: PriceVersion) -> str:
        return _dollars(obj.cache_write_1h_micros)

    @admin.display(description="read")
    def read(self, obj: PriceVersion) -> str:
        return _dollars(obj.cache_read_micros)


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = ["__str__", "scope", "scope_id", "period", "limit", "spent", "reserved", "period_start", "enabled"]
    list_filter = ["scope", "period", "enabled"]
    search_fields = ["scope_id"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    # Spend and holds move only through billing.budgets, atomically; an edit here would race them.
    readonly_fields = ["spent_micros", "reserved_micros", "period_start", "created_at", "updated_at"]

    @admin.display(description="limit")
    def limit(self, obj: Budget) -> str:
        return _dollars(obj.limit_micros)

    @admin.display(description="spent")
    def spent(self, obj: Budget) -> str:
        return _dollars(obj.spent_micros)

    @admin.display(description="reserved")
    def reserved(self, obj: Budget) -> str:
        return _dollars(obj.reserved_micros)


@admin.register(BudgetAlert)
class BudgetAlertAdmin(ReadOnlyAdmin):
    list_display = ["budget", "threshold_percent", "period_start", "spent_micros", "limit_micros", "created_at"]
    list_filter = ["threshold_percent", "budget__scope"]
    list_select_related = ["budget"]


@admin.register(RateLimitPolicy)
class RateLimitPolicyAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "scope",
        "scope_id",
        "model_id",
        "requests_per_minute",
        "input_tokens_per_minute",
        "output_tokens_per_minute",
        "concurrent_requests",
        "enabled",
    ]
    list_editable = ["requests_per_minute", "input_tokens_per_minute", "output_tokens_per_minute", "enabled"]
    list_filter = ["scope", "enabled"]
    search_fields = ["model_id", "scope_id"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "principal_kind", "principal_id", "kind", "model_id", "cost", "batch", "subject"]
    list_filter = ["principal_kind", "kind", "model_id", "batch", "created_at"]
    search_fields = ["=subject", "=upstream_request_id", "=upstream_message_id", "=event_key"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # COUNT(*) over a large ledger on every page is the slow part

    @admin.display(description="cost", ordering="cost_micros")
    def cost(self, obj: LedgerEntry) -> str:
        return _dollars(obj.cost_micros)


@admin.register(DailyRollup)
class DailyRollupAdmin(ReadOnlyAdmin):
    list_display = ["day", "principal_kind", "principal_id", "model_id", "requests", "cost"]
    list_filter = ["principal_kind", "model_id", "day"]
    date_hierarchy = "day"

    @admin.display(description="cost", ordering="cost_micros")
    def cost(self, obj: DailyRollup) -> str:
        return _dollars(obj.cost_micros)


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ["pk", "principal_kind", "principal_id", "model_id", "amount_micros", "budget_ids", "created_at"]


@admin.register(SpendDashboard)
class SpendDashboardAdmin(ReadOnlyAdmin):
    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("billing:dashboard"))
