"""Billing tables: prices, the append-only ledger and its daily rollup, budgets, rate-limit policies."""

from __future__ import annotations

import functools

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

PRICE_FIELDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")


class PrincipalKind(models.TextChoices):
    USER = "user", "User"
    PARTNER_KEY = "partner_key", "Partner key"


class PriceVersion(models.Model):
    """Prices of one model from `effective_from` on, in micro-dollars per million tokens ($2.50 = 2_500_000).

    Optional band: when a request's prompt (input + cache writes + cache reads) exceeds
    `band_threshold_tokens`, every token of it, output included, is priced with the band_* columns.
    """

    model = models.ForeignKey("routing.Model", on_delete=models.PROTECT, related_name="price_versions")
    effective_from = models.DateTimeField()
    input_micros = models.BigIntegerField("input $/MTok in micros")
    output_micros = models.BigIntegerField("output $/MTok in micros")
    cache_write_5m_micros = models.BigIntegerField("5m cache write $/MTok in micros")
    cache_write_1h_micros = models.BigIntegerField("1h cache write $/MTok in micros")
    cache_read_micros = models.BigIntegerField("cache read $/MTok in micros")
    batch_discount_percent = models.PositiveSmallIntegerField(default=50)
    band_threshold_tokens = models.PositiveIntegerField(null=True, blank=True)
    band_input_micros = models.BigIntegerField(null=True, blank=True)
    band_output_micros = models.BigIntegerField(null=True, blank=True)
    band_cache_write_5m_micros = models.BigIntegerField(null=True, blank=True)
    band_cache_write_1h_micros = models.BigIntegerField(null=True, blank=True)
    band_cache_read_micros = models.BigIntegerField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True, help_text="Source of the price.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model__sort_order", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["model", "effective_from"], name="billing_price_one_per_instant"),
            models.CheckConstraint(
                condition=Q(batch_discount_percent__lte=100), name="billing_price_discount_at_most_100"
            ),
            models.CheckConstraint(
                condition=Q(
                    input_micros__gte=0,
                    output_micros__gte=0,
                    cache_write_5m_micros__gte=0,
                    cache_write_1h_micros__gte=0,
                    cache_read_micros__gte=0,
                ),
                name="billing_price_not_negative",
            ),
            # A band is all or nothing: a threshold with every band price, or none of them.
            models.CheckConstraint(
                condition=Q(
                    band_threshold_tokens__isnull=True,
                    **{f"band_{f}_micros__isnull": True for f in PRICE_FIELDS},
                )
                | Q(
                    band_threshold_tokens__isnull=False,
                    **{f"band_{f}_micros__gte": 0 for f in PRICE_FIELDS},
                ),
                name="billing_price_band_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_id and self.model.model_id} from {self.effective_from:%Y-%m-%d %H:%M}"

    def rates(self, *, banded: bool) -> dict[str, int]:
        """Micros per million tokens for each token class, picking the band when asked."""
        prefix = "band_" if banded else ""
        return {f: getattr(self, f"{prefix}{f}_micros") for f in PRICE_FIELDS}


class LedgerEntry(models.Model):
    """One billed upstream call. Append-only: corrections are new entries, never edits."""

    class Kind(models.TextChoices):
        MESSAGE = "message", "Message"
        JOB = "job", "Job"
        CLASSIFICATION = "classification", "Classification"
        BATCH = "batch", "Batch"

    event_key = models.CharField(max_length=200, unique=True, help_text="Idempotency key: one bill per event.")
    principal_kind = models.CharField(max_length=20, choices=PrincipalKind.choices)
    principal_id = models.BigIntegerField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="ledger_entries"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    subject = models.CharField(max_length=100, blank=True, help_text="Message or job id this bill is for.")
    model_id = models.CharField(max_length=100)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_write_5m_tokens = models.BigIntegerField(default=0)
    cache_write_1h_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cost_micros = models.BigIntegerField()
    price_version = models.ForeignKey(PriceVersion, on_delete=models.PROTECT, related_name="ledger_entries")
    batch = models.BooleanField(default=False)
    upstream_request_id = models.CharField(max_length=100, blank=True)
    upstream_message_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ledger entries"
        indexes = [
            models.Index(fields=["created_at"], name="billing_led_created"),
            models.Index(fields=["principal_kind", "principal_id", "created_at"], name="billing_led_principal"),
            models.Index(fields=["model_id", "created_at"], name="billing_led_model"),
            models.Index(fields=["kind", "created_at"], name="billing_led_kind"),
            models.Index(fields=["subject"], name="billing_led_subject"),
            models.Index(fields=["upstream_request_id"], name="billing_led_request"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject} {self.model_id} {self.cost_micros}µ$"


class DailyRollup(models.Model):
    """Spend per (billing day, principal, model), kept current in the ledger insert's transaction."""

    day = models.DateField()
    principal_kind = models.CharField(max_length=20, choices=PrincipalKind.choices)
    principal_id = models.BigIntegerField()
    model_id = models.CharField(max_length=100)
    requests = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_write_5m_tokens = models.BigIntegerField(default=0)
    cache_write_1h_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cost_micros = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-day", "principal_kind", "principal_id", "model_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "principal_kind", "principal_id", "model_id"], name="billing_rollup_unique"
            )
        ]
        indexes = [models.Index(fields=["principal_kind", "principal_id", "day"], name="billing_rollup_principal")]

    def __str__(self) -> str:
        return f"{self.day} {self.principal_kind}:{self.principal_id} {self.model_id}"


class Scope(models.TextChoices):
    USER = "user", "User"
    PARTNER_KEY = "partner_key", "Partner key"
    GROUP = "group", "Group"
    GLOBAL = "global", "Global"


class Budget(models.Model):
    """A hard spend limit per period. spent/reserved move only through billing.budgets."""

    class Period(models.TextChoices):
        DAY = "day", "Day"
        MONTH = "month", "Month"

    scope = models.CharField(max_length=20, choices=Scope.choices)
    scope_id = models.BigIntegerField(
        null=True, blank=True, help_text="User, partner key or group id; empty for global."
    )
    period = models.CharField(max_length=10, choices=Period.choices, default=Period.MONTH)
    limit_micros = models.BigIntegerField()
    spent_micros = models.BigIntegerField(default=0)
    reserved_micros = models.BigIntegerField(default=0)
    period_start = models.DateTimeField(default=timezone.now)
    alert_thresholds = models.CharField(
        max_length=50, blank=True, default="80,95", help_text="Percentages of the limit, e.g. 80,95."
    )
    alert_webhook_url = models.URLField(blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope", "scope_id", "period"]
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "scope_id", "period"], nulls_distinct=False, name="billing_budget_unique"
            ),
            models.CheckConstraint(
                condition=Q(scope="global", scope_id__isnull=True) | (~Q(scope="global") & Q(scope_id__isnull=False)),
                name="billing_budget_scope_id",
            ),
            models.CheckConstraint(
                condition=Q(limit_micros__gte=0, spent_micros__gte=0, reserved_micros__gte=0),
                name="billing_budget_not_negative",
            ),
        ]

    def __str__(self) -> str:
        who = self.scope if self.scope_id is None else f"{self.scope} {self.scope_id}"
        return f"{who} per {self.period}: {self.limit_micros / 1e6:.2f} $"

    @property
    def thresholds(self) -> list[int]:
        return parse_thresholds(self.alert_thresholds)


@functools.lru_cache(maxsize=256)
def _parsed_thresholds(text: str) -> tuple[int, ...]:
    return tuple(sorted({int(t) for t in text.replace(" ", "").split(",") if t.isdigit()}))


def parse_thresholds(text: str) -> list[int]:
    """A budget's alert thresholds ("50, 80,100") as sorted percentages; read on every settlement, so
    parsed once per distinct text."""
    return list(_parsed_thresholds(text))


class AlertSubscription(models.Model):
    """A partner key's own alerts on a budget that covers it: its thresholds and its webhook, apart from the
    operator's (Budget.alert_*), which keep working as they are. Set through claudeapp.api.budget_alerts."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="subscriptions")
    partner_key_id = models.BigIntegerField(help_text="api.PartnerKey (billing does not import the API package)")
    thresholds = ArrayField(models.PositiveSmallIntegerField(), help_text="Percentages of the limit, 1-100")
    webhook_url = models.URLField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["budget", "partner_key_id"]
        constraints = [
            models.UniqueConstraint(fields=["budget", "partner_key_id"], name="billing_subscription_once_per_key")
        ]

    def __str__(self) -> str:
        return f"key {self.partner_key_id} on {self.budget}: {self.thresholds}"


class BudgetAlert(models.Model):
    """A soft threshold crossed: at most one row per (budget, period, threshold) for the operator's
    thresholds, and one per (subscription, period, threshold) for each partner's own."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    subscription = models.ForeignKey(
        AlertSubscription, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    period_start = models.DateTimeField()
    threshold_percent = models.PositiveSmallIntegerField()
    spent_micros = models.BigIntegerField()
    limit_micros = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["budget", "period_start", "threshold_percent"],
                condition=Q(subscription__isnull=True),
                name="billing_alert_once_per_period",
            ),
            models.UniqueConstraint(
                fields=["subscription", "period_start", "threshold_percent"],
                condition=Q(subscription__isnull=False),
                name="billing_partner_alert_once_per_period",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.budget} reached {self.threshold_percent}%"


class Reservation(models.Model):
    """Money held on budgets while an upstream call runs. Deleted when settled or released."""

    principal_kind = models.CharField(max_length=20, choices=PrincipalKind.choices)
    principal_id = models.BigIntegerField()
    user_id = models.BigIntegerField(null=True)
    model_id = models.CharField(max_length=100)
    price_version = models.ForeignKey(PriceVersion, on_delete=models.PROTECT, related_name="+")
    amount_micros = models.BigIntegerField()
    budget_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    batch = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Reaped after this; else after the reap age.")

    def __str__(self) -> str:
        return f"reservation {self.pk}: {self.amount_micros}µ$ on {self.budget_ids}"


class RateLimitPolicy(models.Model):
    """Requests and tokens per minute and concurrent requests for one scope (0 = no limit on that axis).

    `default` applies to every principal, each with its own bucket, unless the principal has a
    user or partner-key policy of its own. `model` limits one model across all callers. A model_id
    on any other scope narrows the policy to that model.
    """

    class PolicyScope(models.TextChoices):
        USER = "user", "User"
        PARTNER_KEY = "partner_key", "Partner key"
        GROUP = "group", "Group"
        GLOBAL = "global", "Global (whole gateway)"
        MODEL = "model", "Model (all callers)"
        DEFAULT = "default", "Default (each principal)"

    scope = models.CharField(max_length=20, choices=PolicyScope.choices)
    scope_id = models.BigIntegerField(null=True, blank=True)
    model_id = models.CharField(max_length=100, blank=True, help_text="Required for scope=model; optional otherwise.")
    requests_per_minute = models.PositiveIntegerField(default=0)
    input_tokens_per_minute = models.PositiveIntegerField(default=0)
    output_tokens_per_minute = models.PositiveIntegerField(default=0)
    concurrent_requests = models.PositiveIntegerField(default=0)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope", "scope_id", "model_id"]
        verbose_name_plural = "rate limit policies"
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "scope_id", "model_id"], nulls_distinct=False, name="billing_ratelimit_unique"
            ),
            models.CheckConstraint(
                condition=Q(scope__in=["global", "model", "default"], scope_id__isnull=True)
                | (Q(scope__in=["user", "partner_key", "group"]) & Q(scope_id__isnull=False)),
                name="billing_ratelimit_scope_id",
            ),
            models.CheckConstraint(condition=~Q(scope="model", model_id=""), name="billing_ratelimit_model_needs_id"),
        ]

    def __str__(self) -> str:
        who = self.scope if self.scope_id is None else f"{self.scope} {self.scope_id}"
        return f"{who} {self.model_id or 'all models'}"


class SpendDashboard(LedgerEntry):
    """No table of its own: puts a 'Spend dashboard' link in the admin index's Billing section."""

    class Meta:
        proxy = True
        verbose_name = "spend dashboard"
        verbose_name_plural = "spend dashboard"
