"""Reads for the spend dashboard and the CSV export, from the rollups and the ledger."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Case, F, OuterRef, Q, QuerySet, Subquery, Sum, When
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from billing.models import Budget, DailyRollup, LedgerEntry, RateLimitPolicy
from claudeapp.accounts.principals import Principal


def _with_share(rows: list[dict], key: str = "cost_micros") -> list[dict]:
    """Add `percent` of the largest row, for CSS bar widths."""
    top = max((r[key] for r in rows), default=0) or 1
    return [{**r, "percent": round(100 * r[key] / top, 1), "dollars": r[key] / 1e6} for r in rows]


def spend_per_day(*, since: dt.date) -> list[dict]:
    rows = DailyRollup.objects.filter(day__gte=since).values("day").annotate(cost_micros=Sum("cost_micros"))
    return _with_share(list(rows.order_by("day")))


def spend_per_model(*, since: dt.date) -> list[dict]:
    rows = (
        DailyRollup.objects.filter(day__gte=since)
        .values("model_id")
        .annotate(cost_micros=Sum("cost_micros"), requests=Sum("requests"))
        .order_by("-cost_micros")
    )
    return _with_share(list(rows))


def top_principals(*, since: dt.date, limit: int = 10) -> list[dict]:
    rows = (
        DailyRollup.objects.filter(day__gte=since)
        .values("principal_kind", "principal_id")
        .annotate(cost_micros=Sum("cost_micros"), requests=Sum("requests"))
        .order_by("-cost_micros")[:limit]
    )
    return _with_share(list(rows))


# Where ledger spend came from, read off who called and what was billed (the ledger's surface filter, the CSV).
LEDGER_SURFACES: dict[str, tuple[str, Q]] = {
    "chat": ("Chat (signed-in users)", Q(principal_kind="user", kind__in=["message", "classification"])),
    "partner": ("Partner API keys", Q(principal_kind="partner_key", kind__in=["message", "classification"])),
    "jobs": ("Queued jobs", Q(kind="job")),
    "batches": ("Message Batches", Q(kind="batch") | Q(batch=True)),
}


def ledger_between(
    *,
    start: dt.date,
    end: dt.date,
    principal: tuple[str, int] | None = None,
    model_id: str = "",
    surface: str = "",
) -> Iterator[LedgerEntry]:
    """Entries from `start` to `end` inclusive, as billing-time-zone days, oldest first, streamed; only one
    principal's (kind, id), one model's and one surface's (a LEDGER_SURFACES key) when given."""
    tz = ZoneInfo(settings.BILLING_TIME_ZONE)
    after = dt.datetime.combine(start, dt.time(), tzinfo=tz)
    before = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    entries = LedgerEntry.objects.filter(created_at__gte=after, created_at__lt=before).order_by("created_at", "id")
    if principal is not None:
        entries = entries.filter(principal_kind=principal[0], principal_id=principal[1])
    if model_id:
        entries = entries.filter(model_id=model_id)
    if surface:
        entries = entries.filter(LEDGER_SURFACES[surface][1])
    named = with_principal_names(entries).annotate(username=F("user__username"))
    return named.iterator(chunk_size=2000)


def parse_principal(value: str | None) -> tuple[str, int] | None:
    """`user:3` or `partner_key:7` (the console's principal filter) as (kind, id); None for anything else."""
    kind, _, pk = (value or "").partition(":")
    return (kind, int(pk)) if kind in ("user", "partner_key") and pk.isdigit() else None


def with_principal_names(queryset: QuerySet, kind: str = "principal_kind", pk: str = "principal_id") -> QuerySet:
    """Annotate each row with its principal's name (username, or key name and owner) in the same query."""
    partner_key = apps.get_model("api", "PartnerKey")  # by name, not import: the api package sits above billing
    users = get_user_model().objects.filter(pk=OuterRef(pk))
    keys = partner_key.objects.filter(pk=OuterRef(pk))
    return queryset.annotate(
        principal_username=Case(When(**{kind: "user"}, then=Subquery(users.values("username")[:1]))),
        principal_key_name=Case(When(**{kind: "partner_key"}, then=Subquery(keys.values("name")[:1]))),
        principal_key_owner=Case(When(**{kind: "partner_key"}, then=Subquery(keys.values("owner__username")[:1]))),
    )


def principal_name(kind: str, pk: int, username: str | None, key_name: str | None, key_owner: str | None) -> str:
    if kind == "user" and username:
        return username
    if kind == "partner_key" and key_name:
        return f"key “{key_name}” ({key_owner})"
    return f"{kind.replace('_', ' ')} #{pk} (deleted)" if kind in ("user", "partner_key") else f"{kind} #{pk}"


def principal_url(kind: str, pk: int) -> str | None:
    if kind == "user":
        return reverse("admin:accounts_user_change", args=[pk])
    if kind == "partner_key":
        return reverse("admin:api_partnerkey_change", args=[pk])
    return None


def principal_link(row: object, kind: str = "principal_kind", pk: str = "principal_id") -> str:
    """An admin link naming the principal of a row annotated by with_principal_names (HTML-safe)."""
    k, i = getattr(row, kind), getattr(row, pk)
    name = principal_name(
        k, i, getattr(row, "principal_username", None), getattr(row, "principal_key_name", None),
        getattr(row, "principal_key_owner", None),
    )  # fmt: skip
    if name.endswith("(deleted)"):
        return name
    return format_html('<a href="{}">{}</a>', principal_url(k, i), name)


@dataclass(frozen=True)
class PrincipalLabel:
    kind: str
    id: int
    name: str
    url: str | None  # the admin page of the user or partner key; None when it is gone

    def __str__(self) -> str:
        return self.name


def principal_labels(pairs: Iterable[tuple[str, int]]) -> dict[tuple[str, int], PrincipalLabel]:
    """Names and admin links for (principal_kind, principal_id) pairs, in two queries at most."""
    pairs = set(pairs)
    user_ids = {pk for kind, pk in pairs if kind == "user"}
    key_ids = {pk for kind, pk in pairs if kind == "partner_key"}
    users = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username")) if user_ids else {}
    keys: dict[int, tuple[str, str]] = {}
    if key_ids:
        partner_key = apps.get_model("api", "PartnerKey")
        rows = partner_key.objects.filter(pk__in=key_ids).values_list("pk", "name", "owner__username")
        keys = {pk: (name, owner) for pk, name, owner in rows}
    labels = {}
    for kind, pk in pairs:
        key_name, key_owner = keys.get(pk, (None, None)) if kind == "partner_key" else (None, None)
        name = principal_name(kind, pk, users.get(pk) if kind == "user" else None, key_name, key_owner)
        url = None if name.endswith("(deleted)") else principal_url(kind, pk)
        labels[(kind, pk)] = PrincipalLabel(kind, pk, name, url)
    return labels


# --- what a principal may still spend and send (GET /api/v1/limits, the partner portal) -------------


def budget_status(principal: Principal, *, at: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Every enabled budget covering `principal` (global, its user, its key, its groups), with what is
    spent and held this period, what remains and when it resets. Spend of a period that has ended reads
    0, as the next hold would make it."""
    from billing import budgets  # budgets imports the models' signals; keep this module light to import

    now = at or timezone.now()
    rows = []
    for budget in Budget.objects.filter(budgets.covering(principal), enabled=True).order_by("pk"):
        start, end = budgets.period_bounds(budget.period, now)
        spent = 0 if budget.period_start < start else budget.spent_micros
        rows.append(
            {
                "id": budget.pk,
                "scope": budget.scope,
                "scope_id": budget.scope_id,
                "period": budget.period,
                "limit_micros": budget.limit_micros,
                "spent_micros": spent,
                "held_micros": budget.reserved_micros,
                "remaining_micros": max(budget.limit_micros - spent - budget.reserved_micros, 0),
                "period_start": start,
                "resets_at": end,
            }
        )
    return rows


def rate_limit_status(principal: Principal) -> list[dict[str, Any]]:
    """Every enabled rate-limit policy that applies to `principal` (for any model), each axis with its
    limit, what is in use in the current minute (or concurrently) and when it is all free again.

    `used` reads the same Redis buckets the limiter takes from; with Redis unreachable it is None."""
    from billing import limits, redisconn

    chosen = _policies_for(principal, limits.policies())
    try:
        return [_policy_status(principal, policy, redisconn) for policy in chosen]
    except redisconn.UNAVAILABLE:
        return [_policy_status(principal, policy, None) for policy in chosen]


def _policies_for(principal: Principal, policies: list[RateLimitPolicy]) -> list[RateLimitPolicy]:
    own = {("user", principal.user_id)}
    if principal.kind == "partner_key":
        own.add(("partner_key", principal.id))
    mine = [p for p in policies if (p.scope, p.scope_id) in own | {("group", g) for g in principal.group_ids}]
    shared = [p for p in policies if p.scope in ("global", "model")]
    # `default` applies (per model) where the principal has no policy of its own for that model.
    owned_models = {p.model_id for p in mine if (p.scope, p.scope_id) in own}
    uncovered = "" not in owned_models
    defaults = [p for p in policies if p.scope == "default" and uncovered and p.model_id not in owned_models]
    return sorted(mine + shared + defaults, key=lambda p: p.pk)


_AXES = (
    ("requests_per_minute", "requests"),
    ("input_tokens_per_minute", "input-tokens"),
    ("output_tokens_per_minute", "output-tokens"),
)


def _policy_status(principal: Principal, policy: RateLimitPolicy, redis: Any) -> dict[str, Any]:
    owner = principal.key if policy.scope == "default" else ""  # default: one bucket per principal
    client = redis.client() if redis is not None else None
    now_us = time.time() * 1_000_000
    axes = []
    for attr, axis in _AXES:
        limit = getattr(policy, attr)
        if not limit:
            continue
        used = reset = None
        if client is not None:
            tat = float(client.get(redis.key("rl", policy.pk, owner, axis)) or 0)
            ahead = max(tat - now_us, 0.0)  # GCRA: how far the bucket's arrival time runs ahead of now
            used, reset = min(math.ceil(limit * ahead / _PERIOD_US), limit), math.ceil(ahead / 1_000_000)
        axes.append(_axis(axis, limit, used, reset))
    if policy.concurrent_requests:
        used = None
        if client is not None:
            used = client.zcount(redis.key("rl", policy.pk, owner, "concurrent"), now_us, "+inf")
        axes.append(_axis("concurrent", policy.concurrent_requests, used, None))
    return {"id": policy.pk, "scope": policy.scope, "model": policy.model_id or None, "axes": axes}


_PERIOD_US = 60_000_000


def _axis(axis: str, limit: int, used: int | None, reset: int | None) -> dict[str, Any]:
    remaining = None if used is None else max(limit - used, 0)
    return {"axis": axis, "limit": limit, "used": used, "remaining": remaining, "reset_seconds": reset}
