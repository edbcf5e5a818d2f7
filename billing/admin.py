"""Billing in the console: prices, the ledger and rollups (principals by name, filters, totals), budgets
entered in dollars, rate-limit policies; scopes picked by name (autocomplete), never typed as ids."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django import forms
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Count, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from billing import budgets, money, selectors
from billing.ledger import billing_day
from billing.models import (
    AlertSubscription,
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
    return "" if micros is None else money.usd(micros)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by billing's services: viewable, never added, edited or deleted here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


# --- shared filters and search --------------------------------------------------------------------


class DatePresetFilter(admin.SimpleListFilter):
    """Today, yesterday, this month... as billing-time-zone days (the periods budgets use)."""

    title = "when"
    parameter_name = "when"
    field = "created_at"
    PRESETS = [("today", "Today"), ("yesterday", "Yesterday"), ("7d", "Last 7 days"), ("month", "This month"),
               ("last_month", "Last month")]  # fmt: skip

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return self.PRESETS

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        bounds = preset_days(self.value())
        if bounds is None:
            return queryset
        first, last = bounds
        if isinstance(queryset.model._meta.get_field(self.field), models.DateTimeField):
            tz = ZoneInfo(settings.BILLING_TIME_ZONE)
            after = dt.datetime.combine(first, dt.time(), tzinfo=tz)
            before = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=tz)
            return queryset.filter(**{f"{self.field}__gte": after, f"{self.field}__lt": before})
        return queryset.filter(**{f"{self.field}__gte": first, f"{self.field}__lte": last})


class DayPresetFilter(DatePresetFilter):
    field = "day"


def preset_days(value: str | None, *, today: dt.date | None = None) -> tuple[dt.date, dt.date] | None:
    """A preset's first and last billing day, inclusive."""
    today = today or billing_day(timezone.now())
    month_start = today.replace(day=1)
    previous_end = month_start - dt.timedelta(days=1)
    return {
        "today": (today, today),
        "yesterday": (today - dt.timedelta(days=1), today - dt.timedelta(days=1)),
        "7d": (today - dt.timedelta(days=6), today),
        "month": (month_start, today),
        "last_month": (previous_end.replace(day=1), previous_end),
    }.get(value or "")


class PrincipalFilter(admin.SimpleListFilter):
    """The principals who spent most in the last 30 days, by name; `?principal=user:3` works for anyone."""

    title = "principal"
    parameter_name = "principal"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        since = billing_day(timezone.now()) - dt.timedelta(days=29)
        rows = selectors.top_principals(since=since, limit=25)
        labels = selectors.principal_labels((r["principal_kind"], r["principal_id"]) for r in rows)
        pairs = [(r["principal_kind"], r["principal_id"]) for r in rows]
        choices = [(f"{k}:{i}", str(labels[(k, i)])) for k, i in pairs]
        current = self.value()
        if current and current not in dict(choices) and selectors.parse_principal(current):
            kind, pk = selectors.parse_principal(current)  # type: ignore[misc]
            choices.append((current, str(selectors.principal_labels([(kind, pk)])[(kind, pk)])))
        return choices

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        parsed = selectors.parse_principal(self.value())
        if parsed is None:
            return queryset
        return queryset.filter(principal_kind=parsed[0], principal_id=parsed[1])


class SurfaceFilter(admin.SimpleListFilter):
    """Where the spend came from, read off who called and what was billed."""

    title = "surface"
    parameter_name = "surface"
    SURFACES = selectors.LEDGER_SURFACES

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(key, label) for key, (label, _) in self.SURFACES.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        found = self.SURFACES.get(self.value() or "")
        return queryset if found is None else queryset.filter(found[1])


def principal_search(queryset: QuerySet, term: str) -> QuerySet:
    """Rows whose principal is a user or partner key whose name contains `term` (a key's spend shows under
    the key's name; a user's under the username)."""
    term = term.strip()
    if not term:
        return queryset.none()
    users = get_user_model().objects.filter(username__icontains=term).values_list("pk", flat=True)[:200]
    partner_key = apps.get_model("api", "PartnerKey")
    keys = partner_key.objects.filter(name__icontains=term).values_list("pk", flat=True)[:200]
    return queryset.filter(
        Q(principal_kind="user", principal_id__in=list(users))
        | Q(principal_kind="partner_key", principal_id__in=list(keys))
    )


class _Totals:
    """Changelists that show, above the rows, the sum of everything the filters selected."""

    totals_fields: tuple[str, ...] = ("cost_micros",)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)  # type: ignore[misc]
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            sums = changelist.queryset.aggregate(rows=Count("pk"), **{f: Sum(f) for f in self.totals_fields})
            response.context_data["totals"] = {
                "rows": sums["rows"],
                "cost": money.usd(sums.get("cost_micros") or 0),
                "requests": sums.get("requests"),
                "input_tokens": sums.get("input_tokens") or 0,
                "output_tokens": sums.get("output_tokens") or 0,
            }
        return response


# --- prices ---------------------------------------------------------------------------------------


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


# --- scopes by name -------------------------------------------------------------------------------


def scope_link(scope: str, scope_id: int | None) -> str:
    """A budget's or policy's scope as a name with a link: a user, a group, a partner key, or the kind."""
    if scope_id is None:
        return dict(Budget._meta.get_field("scope").choices or []).get(scope, scope)
    if scope == "group":
        name = Group.objects.filter(pk=scope_id).values_list("name", flat=True).first()
        if name is None:
            return f"group #{scope_id} (deleted)"
        return format_html('group <a href="{}">{}</a>', reverse("admin:auth_group_change", args=[scope_id]), name)
    label = selectors.principal_labels([(scope, scope_id)])[(scope, scope_id)]
    if label.url is None:
        return label.name
    return format_html('{} <a href="{}">{}</a>', "user" if scope == "user" else "", label.url, label.name)


def _picker(field_name: str) -> AutocompleteSelect:
    # requestlog.ScopePicker has no table: its foreign keys exist so autocomplete can search these models.
    picker = apps.get_model("requestlog", "ScopePicker")
    return AutocompleteSelect(picker._meta.get_field(field_name), admin.site)


class ScopeForm(forms.ModelForm):
    """scope_id picked by name: a user, a group or a partner key, whichever the scope needs."""

    user = forms.ModelChoiceField(queryset=get_user_model().objects.all(), required=False)
    group = forms.ModelChoiceField(queryset=Group.objects.all(), required=False)
    partner_key = forms.ModelChoiceField(queryset=None, required=False, label="Partner key")  # type: ignore[arg-type]
    PICKED_BY = {"user": "user", "group": "group", "partner_key": "partner_key"}
    UNIQUE: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["partner_key"].queryset = apps.get_model("api", "PartnerKey").objects.all()  # type: ignore[attr-defined]
        for name in ("user", "group", "partner_key"):
            widget = _picker(name)
            widget.choices = self.fields[name].choices  # type: ignore[attr-defined]
            self.fields[name].widget = widget
            self.fields[name].help_text = f"For scope “{name.replace('_', ' ')}”: type to search."
        instance = self.instance
        if instance.pk and instance.scope in self.PICKED_BY and instance.scope_id is not None:
            self.initial[self.PICKED_BY[instance.scope]] = instance.scope_id

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        scope = data.get("scope")
        field = self.PICKED_BY.get(scope or "")
        if field is None:
            self.instance.scope_id = None
            return data
        picked = data.get(field)
        if picked is None:
            self.add_error(field, f"Pick the {field.replace('_', ' ')} this applies to.")
        else:
            self.instance.scope_id = picked.pk
        return data

    def _post_clean(self) -> None:
        super()._post_clean()
        # The unique constraint names scope_id, which is not a form field, so Django skips it: check it here.
        unique = {f: getattr(self.instance, f) for f in self.UNIQUE}
        twins = type(self.instance).objects.filter(**unique).exclude(pk=self.instance.pk)
        if not self.errors and twins.exists():
            self.add_error(None, "There is one already for this scope: edit that one instead.")


class BudgetForm(ScopeForm):
    UNIQUE = ("scope", "scope_id", "period")
    limit_dollars = forms.DecimalField(
        label="Limit ($)", min_value=Decimal(0), max_digits=18, decimal_places=6,
        help_text="In dollars, e.g. 25 or 0.50; kept exactly to the micro-dollar ($0.000001).",
    )  # fmt: skip

    class Meta:
        model = Budget
        fields = ["scope", "period", "alert_thresholds", "alert_webhook_url", "enabled"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["limit_dollars"] = money.to_dollars(self.instance.limit_micros)
        self.fields["alert_thresholds"].help_text = (
            "Percentages of the limit, e.g. 80,95: each sends one e-mail (and a webhook POST when a URL is set) "
            "per period."
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("limit_dollars") is not None:
            self.instance.limit_micros = money.to_micros(data["limit_dollars"])
        return data


class PolicyForm(ScopeForm):
    UNIQUE = ("scope", "scope_id", "model_id")

    class Meta:
        model = RateLimitPolicy
        fields = ["scope", "model_id", "requests_per_minute", "input_tokens_per_minute", "output_tokens_per_minute",
                  "concurrent_requests", "enabled"]  # fmt: skip


# --- budgets and limits ---------------------------------------------------------------------------


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    form = BudgetForm
    list_display = ["who", "period", "limit", "spent", "reserved", "remaining", "period_start", "enabled"]
    list_filter = ["scope", "period", "enabled"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = [
        ("Who", {"fields": ["scope", "user", "group", "partner_key"]}),
        ("Limit", {"fields": ["period", "limit_dollars", "enabled"]}),
        ("Alerts", {"fields": ["alert_thresholds", "alert_webhook_url"]}),
        ("Now (moved only by calls)", {"fields": ["spent", "reserved", "period_start", "created_at", "updated_at"]}),
    ]
    # Spend and holds move only through billing.budgets, atomically; an edit here would race them.
    readonly_fields = ["spent", "reserved", "period_start", "created_at", "updated_at"]

    def save_model(self, request: HttpRequest, obj: Budget, form: Any, change: bool) -> None:
        starts_now = not change or bool({"scope", "period", "user", "group", "partner_key"} & set(form.changed_data))
        super().save_model(request, obj, form, change)
        if starts_now:
            # A budget created mid-period starts from what its scope has spent so far this period.
            budgets.start_from_actual_spend(budget_id=obj.pk)

    @admin.display(description="who", ordering="scope")
    def who(self, obj: Budget) -> str:
        return scope_link(obj.scope, obj.scope_id)

    @admin.display(description="limit", ordering="limit_micros")
    def limit(self, obj: Budget) -> str:
        return _dollars(obj.limit_micros)

    @admin.display(description="spent", ordering="spent_micros")
    def spent(self, obj: Budget) -> str:
        return _dollars(obj.spent_micros)

    @admin.display(description="held now")
    def reserved(self, obj: Budget) -> str:
        return _dollars(obj.reserved_micros)

    @admin.display(description="remaining")
    def remaining(self, obj: Budget) -> str:
        return _dollars(max(0, obj.limit_micros - obj.spent_micros - obj.reserved_micros))


@admin.register(BudgetAlert)
class BudgetAlertAdmin(ReadOnlyAdmin):
    list_display = ["budget", "threshold_percent", "period_start", "spent", "limit", "created_at"]
    list_filter = ["threshold_percent", "budget__scope"]
    list_select_related = ["budget"]

    @admin.display(description="spent", ordering="spent_micros")
    def spent(self, obj: BudgetAlert) -> str:
        return _dollars(obj.spent_micros)

    @admin.display(description="limit", ordering="limit_micros")
    def limit(self, obj: BudgetAlert) -> str:
        return _dollars(obj.limit_micros)


@admin.register(AlertSubscription)
class AlertSubscriptionAdmin(ReadOnlyAdmin):
    """Partners' own alerts on budgets covering their keys (set by API or portal, not here): seen, so an
    operator knows who is told what; the partner changes or removes them."""

    list_display = ["budget", "key", "thresholds", "webhook_url", "updated_at"]
    list_filter = ["budget__scope"]
    list_select_related = ["budget"]
    search_fields = ["webhook_url"]

    @admin.display(description="partner key")
    def key(self, obj: AlertSubscription) -> str:
        label = selectors.principal_labels([("partner_key", obj.partner_key_id)])[("partner_key", obj.partner_key_id)]
        return format_html('<a href="{}">{}</a>', label.url, label.name) if label.url else label.name


@admin.register(RateLimitPolicy)
class RateLimitPolicyAdmin(admin.ModelAdmin):
    form = PolicyForm
    list_display = [
        "__str__",
        "who",
        "model_id",
        "requests_per_minute",
        "input_tokens_per_minute",
        "output_tokens_per_minute",
        "concurrent_requests",
        "enabled",
    ]
    list_editable = ["requests_per_minute", "input_tokens_per_minute", "output_tokens_per_minute", "enabled"]
    list_filter = ["scope", "enabled"]
    search_fields = ["model_id"]
    fieldsets = [
        ("Who", {"fields": ["scope", "user", "group", "partner_key", "model_id"]}),
        ("Per minute (0 = no limit)", {"fields": ["requests_per_minute", "input_tokens_per_minute",
                                                   "output_tokens_per_minute", "concurrent_requests", "enabled"]}),
    ]  # fmt: skip

    @admin.display(description="who", ordering="scope")
    def who(self, obj: RateLimitPolicy) -> str:
        return scope_link(obj.scope, obj.scope_id)


# --- ledger and rollups ---------------------------------------------------------------------------


@admin.register(LedgerEntry)
class LedgerEntryAdmin(_Totals, ReadOnlyAdmin):
    list_display = ["created_at", "principal", "kind", "model_id", "input_tokens", "output_tokens", "cost", "batch",
                    "subject"]  # fmt: skip
    list_filter = [DatePresetFilter, PrincipalFilter, SurfaceFilter, "model_id", "kind", "batch"]
    search_fields = ["=subject", "=upstream_request_id", "=upstream_message_id", "=event_key"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # COUNT(*) over a large ledger on every page is the slow part
    totals_fields = ("cost_micros", "input_tokens", "output_tokens")
    change_list_template = "admin/billing/totals_change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[LedgerEntry]:
        return selectors.with_principal_names(super().get_queryset(request))

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        found, duplicates = super().get_search_results(request, queryset, search_term)
        return found | principal_search(queryset, search_term), duplicates

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        return super().changelist_view(request, {**(extra_context or {}), "csv": ledger_csv_link(request.GET)})

    @admin.display(description="principal", ordering="principal_id")
    def principal(self, obj: LedgerEntry) -> str:
        return selectors.principal_link(obj)

    @admin.display(description="cost", ordering="cost_micros")
    def cost(self, obj: LedgerEntry) -> str:
        return _dollars(obj.cost_micros)


def ledger_csv_link(params: Any) -> dict[str, str]:
    """The CSV export of the ledger page's selection: its date preset (else this month), principal, model and
    surface; a search or the date drill-down are not carried, so the label says what the file holds."""
    when = params.get("when") if params.get("when") in dict(DatePresetFilter.PRESETS) else "month"
    first, last = preset_days(when)  # type: ignore[misc]
    query = {"from": first.isoformat(), "to": last.isoformat()}
    held = [f"{first} to {last}"]
    principal = selectors.parse_principal(params.get("principal"))
    if principal is not None:
        query["principal"] = f"{principal[0]}:{principal[1]}"
        held.append(selectors.principal_labels([principal])[principal].name)
    if params.get("model_id__exact"):
        query["model"] = params["model_id__exact"]
        held.append(query["model"])
    if params.get("surface") in selectors.LEDGER_SURFACES:
        query["surface"] = params["surface"]
        held.append(selectors.LEDGER_SURFACES[query["surface"]][0].lower())
    return {"url": f"{reverse('billing:ledger_csv')}?{urlencode(query)}", "label": ", ".join(held)}


@admin.register(DailyRollup)
class DailyRollupAdmin(_Totals, ReadOnlyAdmin):
    list_display = ["day", "principal", "model_id", "requests", "input_tokens", "output_tokens", "cost"]
    list_filter = [DayPresetFilter, PrincipalFilter, "principal_kind", "model_id"]
    date_hierarchy = "day"
    totals_fields = ("cost_micros", "requests", "input_tokens", "output_tokens")
    change_list_template = "admin/billing/totals_change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[DailyRollup]:
        return selectors.with_principal_names(super().get_queryset(request))

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        found, duplicates = super().get_search_results(request, queryset, search_term)
        return found | principal_search(queryset, search_term), duplicates

    search_fields = ["model_id"]

    @admin.display(description="principal", ordering="principal_id")
    def principal(self, obj: DailyRollup) -> str:
        return selectors.principal_link(obj)

    @admin.display(description="cost", ordering="cost_micros")
    def cost(self, obj: DailyRollup) -> str:
        return _dollars(obj.cost_micros)


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ["pk", "principal", "model_id", "amount", "budget_ids", "created_at", "expires_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Reservation]:
        return selectors.with_principal_names(super().get_queryset(request))

    @admin.display(description="principal")
    def principal(self, obj: Reservation) -> str:
        return selectors.principal_link(obj)

    @admin.display(description="held", ordering="amount_micros")
    def amount(self, obj: Reservation) -> str:
        return _dollars(obj.amount_micros)


@admin.register(SpendDashboard)
class SpendDashboardAdmin(ReadOnlyAdmin):
    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("billing:dashboard"))
