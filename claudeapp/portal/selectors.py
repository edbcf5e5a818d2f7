"""The portal's reads: a key owner's keys, usage, limits, recent calls and statements. Everything is
scoped to what is billed to the owner: their browser use and every key they own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from billing import selectors as billing_selectors
from billing.ledger import billing_day
from billing.models import DailyRollup, LedgerEntry
from claudeapp.api import budget_alerts, keys
from claudeapp.api.models import PartnerKey
from claudeapp.jobs import webhooks
from claudeapp.portal.models import KeyAllowance
from claudeapp.requestlog.models import RequestLog

SURFACES = {
    "upstream": "API (stateless)",
    "upstream-failed": "API (failed upstream)",
    "message": "Conversation",
    "job": "Job",
    "classification": "Router classifier",
    "anthropic-batch": "Anthropic batch",
}


def keys_of(owner: Any) -> list[PartnerKey]:
    return list(PartnerKey.objects.filter(owner=owner).order_by("revoked_at", "-created_at"))


def allowance_of(owner: Any) -> KeyAllowance | None:
    return KeyAllowance.objects.filter(owner=owner).first()


def _billed_to(owner: Any) -> Q:
    """Ledger and rollup rows the owner pays for: browser use and every key they own (revoked ones too)."""
    key_ids = PartnerKey.objects.filter(owner_id=owner.pk).values("pk")
    return Q(principal_kind="user", principal_id=owner.pk) | Q(principal_kind="partner_key", principal_id__in=key_ids)


def _bars(rows: list[dict[str, Any]], key: str = "cost_micros") -> list[dict[str, Any]]:
    top = max((row[key] for row in rows), default=0) or 1
    return [{**row, "percent": round(100 * row[key] / top, 1)} for row in rows]


def usage(owner: Any, *, days: int = 30) -> dict[str, Any]:
    """Spend of the last `days` billing days by day, by model (the classifier apart) and by key."""
    since = billing_day(timezone.now()) - dt.timedelta(days=days - 1)
    rollups = DailyRollup.objects.filter(_billed_to(owner), day__gte=since)
    classifier = _classifier(owner, since)
    by_day = list(rollups.values("day").annotate(cost_micros=Sum("cost_micros"), requests=Sum("requests")))
    by_model = list(rollups.values("model_id").annotate(cost_micros=Sum("cost_micros"), requests=Sum("requests")))
    spent_on = {row["model_id"]: row for row in classifier}
    rows = []
    for row in by_model:
        less = spent_on.get(row["model_id"], {"cost_micros": 0, "requests": 0})
        calls = {
            "cost_micros": row["cost_micros"] - less["cost_micros"],
            "requests": row["requests"] - less["requests"],
        }
        if calls["requests"] or calls["cost_micros"]:
            rows.append({"label": row["model_id"], "kind": "calls", **calls})
    rows += [{"label": r["model_id"], "kind": "classifier", "cost_micros": r["cost_micros"],
              "requests": r["requests"]} for r in classifier]  # fmt: skip
    return {
        "since": since,
        "by_day": _bars(sorted(by_day, key=lambda r: r["day"])),
        "by_model": _bars(sorted(rows, key=lambda r: -r["cost_micros"])),
        "by_key": _bars(_by_key(owner, rollups)),
        "total_micros": sum(row["cost_micros"] for row in by_day),
        "classifier_micros": sum(row["cost_micros"] for row in classifier),
    }


def _classifier(owner: Any, since: dt.date) -> list[dict[str, Any]]:
    start = dt.datetime.combine(since, dt.time(), tzinfo=ZoneInfo(settings.BILLING_TIME_ZONE))
    entries = LedgerEntry.objects.filter(_billed_to(owner), kind=LedgerEntry.Kind.CLASSIFICATION, created_at__gte=start)
    return list(entries.values("model_id").annotate(cost_micros=Sum("cost_micros"), requests=Count("id")))


def _by_key(owner: Any, rollups: QuerySet[DailyRollup]) -> list[dict[str, Any]]:
    names = {key.pk: key.name for key in PartnerKey.objects.filter(owner_id=owner.pk)}
    grouped = rollups.values("principal_kind", "principal_id").annotate(
        cost_micros=Sum("cost_micros"), requests=Sum("requests")
    )
    rows = []
    for row in grouped:
        browser = row["principal_kind"] == "user"
        label = "Browser (chat)" if browser else names.get(row["principal_id"], f"key #{row['principal_id']}")
        rows.append({"label": label, "cost_micros": row["cost_micros"], "requests": row["requests"]})
    return sorted(rows, key=lambda r: -r["cost_micros"])


def limits(owner: Any) -> list[dict[str, Any]]:
    """Per live key: the budgets covering it (what remains, when they reset, the key's own alerts on each)
    and its rate limits in use."""
    result = []
    for key in PartnerKey.objects.filter(owner=owner, revoked_at__isnull=True).order_by("-created_at"):
        principal = keys.principal_for(key)
        budgets = billing_selectors.budget_status(principal)
        budget_alerts.attach(principal=principal, budgets=budgets)
        result.append({"key": key, "budgets": budgets, "rate_limits": billing_selectors.rate_limit_status(principal)})
    return result


def webhook_secrets(owner: Any) -> list[dict[str, Any]]:
    rows = []
    for key in PartnerKey.objects.filter(owner=owner, revoked_at__isnull=True).order_by("-created_at"):
        info = webhooks.secret_info(principal_kind=keys.PRINCIPAL_KIND, principal_id=key.pk)
        rows.append({"key": key, "secret": info})
    return rows


def _surface(entry: LedgerEntry) -> str:
    return SURFACES.get(entry.event_key.split(":", 1)[0], entry.kind)


def recent_calls(owner: Any, *, limit: int = 50) -> list[dict[str, Any]]:
    """The newest calls billed to the owner (the ledger) and the ones refused or failed before any bill
    (the request log: a 402, a 429, an upstream error), newest first. No prompt text is ever shown."""
    names = {key.pk: key.name for key in PartnerKey.objects.filter(owner_id=owner.pk)}

    def who(kind: str, pk: int) -> str:
        return "Browser" if kind == "user" else names.get(pk, "key")

    entries = LedgerEntry.objects.filter(_billed_to(owner)).order_by("-created_at", "-id")[:limit]
    billed = [
        {
            "at": entry.created_at,
            "surface": _surface(entry),
            "who": who(entry.principal_kind, entry.principal_id),
            "model": entry.model_id,
            "status": "billed",
            "input_tokens": entry.input_tokens + entry.cache_write_5m_tokens + entry.cache_write_1h_tokens,
            "cache_read_tokens": entry.cache_read_tokens,
            "output_tokens": entry.output_tokens,
            "cost_micros": entry.cost_micros,
            "request_id": entry.upstream_request_id,
        }
        for entry in entries
    ]
    unbilled = RequestLog.objects.filter(
        _billed_to(owner), status__in=(RequestLog.Status.REFUSED, RequestLog.Status.FAILED)
    ).order_by("-created_at", "-id")[:limit]
    refused = [
        {
            "at": row.created_at,
            "surface": row.surface,
            "who": who(row.principal_kind, row.principal_id),
            "model": row.model_used or row.model_requested,
            "status": f"{row.get_status_display().lower()} ({row.http_status or '-'} {row.error_type})".strip(),
            "input_tokens": 0,
            "cache_read_tokens": 0,
            "output_tokens": 0,
            "cost_micros": 0,
            "request_id": row.request_id,
        }
        for row in unbilled
    ]
    return sorted(billed + refused, key=lambda call: call["at"], reverse=True)[:limit]


def months_billed(owner: Any) -> list[dt.date]:
    """First days of the months with a bill, newest first (what a statement can be asked for)."""
    days = DailyRollup.objects.filter(_billed_to(owner)).dates("day", "month", order="DESC")
    return list(days)


STATEMENT_COLUMNS = (
    "time",
    "surface",
    "key",
    "model",
    "input_tokens",
    "output_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "cache_read_tokens",
    "batch",
    "cost_micros",
    "upstream_request_id",
)


def statement(owner: Any, *, month: dt.date) -> Iterator[list[Any]]:
    """Every ledger line billed to the owner in `month` (billing time zone), oldest first: the CSV's rows."""
    tz = ZoneInfo(settings.BILLING_TIME_ZONE)
    start = dt.datetime(month.year, month.month, 1, tzinfo=tz)
    end = dt.datetime(month.year + (month.month == 12), month.month % 12 + 1, 1, tzinfo=tz)
    names = {key.pk: key.name for key in PartnerKey.objects.filter(owner_id=owner.pk)}
    entries = LedgerEntry.objects.filter(_billed_to(owner), created_at__gte=start, created_at__lt=end)
    for entry in entries.order_by("created_at", "id").iterator(chunk_size=2000):
        who = "browser" if entry.principal_kind == "user" else names.get(entry.principal_id, "")
        yield [entry.created_at.astimezone(dt.UTC).isoformat(), _surface(entry), who, entry.model_id,
               entry.input_tokens, entry.output_tokens, entry.cache_write_5m_tokens, entry.cache_write_1h_tokens,
               entry.cache_read_tokens, entry.batch, entry.cost_micros, entry.upstream_request_id]  # fmt: skip
