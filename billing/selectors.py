"""Reads for the spend dashboard and the CSV export, from the rollups and the ledger."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Case, OuterRef, QuerySet, Subquery, Sum, When
from django.urls import reverse
from django.utils.html import format_html

from billing.models import DailyRollup, LedgerEntry


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


def ledger_between(*, start: dt.date, end: dt.date) -> Iterator[LedgerEntry]:
    """Entries from `start` to `end` inclusive, as billing-time-zone days, oldest first, streamed."""
    tz = ZoneInfo(settings.BILLING_TIME_ZONE)
    after = dt.datetime.combine(start, dt.time(), tzinfo=tz)
    before = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    entries = LedgerEntry.objects.filter(created_at__gte=after, created_at__lt=before).order_by("created_at", "id")
    return entries.iterator(chunk_size=2000)


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
