"""Reads for the spend dashboard and the CSV export, from the rollups and the ledger."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Sum

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
