"""Spend dashboard and ledger CSV export: staff who may view ledger entries (billing.view_ledgerentry).

Both show every tenant's spend, so being staff is not enough: a staff user without the permission
gets 403, an anonymous or non-staff one the admin login.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from billing import ledger, money, selectors

CSV_COLUMNS = (
    "created_at",
    "event_key",
    "principal_kind",
    "principal_id",
    "principal_name",
    "user_id",
    "username",
    "kind",
    "subject",
    "model_id",
    "batch",
    "input_tokens",
    "output_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "cache_read_tokens",
    "cost_micros",
    "cost_usd",
    "price_version_id",
    "upstream_request_id",
    "upstream_message_id",
)
VIEW_LEDGER = "billing.view_ledgerentry"
# Days the export accepts: a day either side stays a valid date in every time zone.
EARLIEST_DAY = dt.date(1900, 1, 1)
LATEST_DAY = dt.date(9998, 12, 31)


@staff_member_required
@permission_required(VIEW_LEDGER, raise_exception=True)
def dashboard(request: HttpRequest) -> HttpResponse:
    try:
        days = min(max(int(request.GET.get("days", 30)), 1), 366)
    except ValueError:
        days = 30
    since = ledger.billing_day(timezone.now()) - dt.timedelta(days=days - 1)
    context = {
        "title": "Spend dashboard",
        "days": days,
        "since": since,
        "per_day": selectors.spend_per_day(since=since),
        "per_model": selectors.spend_per_model(since=since),
        "top_principals": _named(selectors.top_principals(since=since)),
        "today": ledger.billing_day(timezone.now()),
    }
    context["total"] = money.usd(sum(row["cost_micros"] for row in context["per_model"]))
    return render(request, "billing/dashboard.html", context)


def _named(rows: list[dict]) -> list[dict]:
    labels = selectors.principal_labels((r["principal_kind"], r["principal_id"]) for r in rows)
    return [{**r, "label": labels[(r["principal_kind"], r["principal_id"])]} for r in rows]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _rows(entries: Iterator) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for entry in entries:
        yield writer.writerow([_csv_value(entry, c) for c in CSV_COLUMNS])


def _csv_value(entry: Any, column: str) -> object:
    if column == "cost_usd":  # exact: six decimals are one micro-dollar
        return f"{entry.cost_micros / 1_000_000:.6f}"
    if column == "principal_name":
        return selectors.principal_name(
            entry.principal_kind, entry.principal_id, entry.principal_username, entry.principal_key_name,
            entry.principal_key_owner,
        )  # fmt: skip
    if column == "username":
        return entry.username or ""
    return getattr(entry, column)


@staff_member_required
@permission_required(VIEW_LEDGER, raise_exception=True)
def ledger_csv(request: HttpRequest) -> HttpResponse:
    """The ledger from `from` to `to` (this month by default), optionally one `principal` (user:3,
    partner_key:7), one `model` and one `surface`: the ledger page's selection, as its CSV link passes it."""
    today = ledger.billing_day(timezone.now())
    try:
        start = dt.date.fromisoformat(request.GET.get("from") or today.replace(day=1).isoformat())
        end = dt.date.fromisoformat(request.GET.get("to") or today.isoformat())
    except ValueError:
        return HttpResponseBadRequest("from and to must be dates as YYYY-MM-DD")
    if not (EARLIEST_DAY <= start <= LATEST_DAY and EARLIEST_DAY <= end <= LATEST_DAY):
        return HttpResponseBadRequest(f"from and to must be between {EARLIEST_DAY} and {LATEST_DAY}")
    principal = selectors.parse_principal(request.GET.get("principal"))
    if request.GET.get("principal") and principal is None:
        return HttpResponseBadRequest("principal must be user:<id> or partner_key:<id>")
    surface = request.GET.get("surface", "")
    if surface and surface not in selectors.LEDGER_SURFACES:
        return HttpResponseBadRequest(f"surface must be one of {', '.join(selectors.LEDGER_SURFACES)}")
    entries = selectors.ledger_between(
        start=start, end=end, principal=principal, model_id=request.GET.get("model", ""), surface=surface
    )
    response = StreamingHttpResponse(_rows(entries), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="ledger-{start}-{end}.csv"'
    return response
