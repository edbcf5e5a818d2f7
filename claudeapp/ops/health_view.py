"""GET /admin/health/: the operators' health console, every figure of claudeapp/ops/health.py with a link
to the admin list behind it. Staff with jobs.view_job see it; other staff get 403, anyone else the login.
The call figures link to the request log only for those who may view it (requestlog.view_requestlog).

A figure whose source is down (Redis, Postgres) shows "unavailable" and the rest of the page still renders.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from claudeapp.ops import health

log = logging.getLogger(__name__)
REFRESH_SECONDS = 30


@require_GET
@staff_member_required
@permission_required("jobs.view_job", raise_exception=True)
def console(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    jobs = _read("jobs", health.jobs)
    spend = _read("spend", lambda: health.spend_today(now=now))
    calls = _read("calls", lambda: health.calls(now=now))
    may_list_calls = request.user.has_perm("requestlog.view_requestlog")
    context = {
        **admin.site.each_context(request),
        "title": "Health",
        "refresh_seconds": REFRESH_SECONDS,
        "now": now,
        "breakers": _read("breakers", health.breakers),
        "queues": [
            {"figure": q, "age": q.oldest_age_seconds(now), "url": _jobs_url(queue=q.queue, status="queued")}
            for q in jobs.queues.values()
        ]
        if jobs
        else None,
        "jobs": jobs,
        "workers": _read("workers", health.workers),
        "headroom": _read("headroom", health.headroom),
        "calls": calls,
        "call_totals": _call_cells(calls, calls.total, "", may_list_calls) if calls else None,
        "call_surfaces": [
            {"surface": surface, **_call_cells(calls, counts, surface, may_list_calls)}
            for surface, counts in calls.surfaces.items()
        ]
        if calls
        else None,
        "spend": spend,
        "spend_dollars": f"{spend.cost_micros / 1e6:,.2f}" if spend else None,
        "links": {
            "breakers": reverse("breakers"),
            "dead": reverse("admin:jobs_deadjob_changelist"),
            "running": _jobs_url(status="running"),
            "models": reverse("admin:routing_model_changelist"),
            "ledger_today": _changelist(
                "billing", "ledgerentry", created_at__gte=spend.start.isoformat(), created_at__lt=spend.end.isoformat()
            )
            if spend
            else None,
        },
    }
    return render(request, "ops/health.html", context)


@dataclass
class Cell:
    figure: str  # its data-figure name
    text: str
    href: str | None  # None when the user may not open the request log


def _call_cells(calls: health.CallFigures, counts: health.CallCounts, surface: str, linked: bool) -> dict[str, Cell]:
    """One row of call figures (all surfaces, or one), each linked to the request log rows it counts:
    the same window, outcome and surface (for OTHER, the blank surface: the one other surface logged)."""
    suffix = f"-{surface}" if surface else ""
    surface_filter = {"surface__exact": "" if surface == health.OTHER else surface} if surface else {}

    def url(outcome: str) -> str | None:
        if not linked:
            return None
        filters = {"outcome": outcome, **surface_filter}
        window = {"created_at__gte": calls.since.isoformat(), "created_at__lte": calls.until.isoformat()}
        return _changelist("requestlog", "requestlog", **filters, **window)

    def ms(value: float | None) -> str:
        return "—" if value is None else f"{value:.0f} ms"

    rate = "—" if counts.error_rate is None else f"{counts.error_rate * 100:.1f} %"
    return {
        "calls": Cell(f"calls{suffix}", str(counts.calls), url("ran")),
        "errors": Cell(f"errors{suffix}", str(counts.errors), url("errors")),
        "error_rate": Cell(f"error-rate{suffix}", rate, url("errors")),
        "refused": Cell(f"refused{suffix}", str(counts.refused), url("refused")),
        "p50": Cell(f"p50{suffix}", ms(counts.p50_ms), url("ran")),
        "p99": Cell(f"p99{suffix}", ms(counts.p99_ms), url("ran")),
    }


def _read(name: str, selector: Callable[[], Any]) -> Any:
    try:
        return selector()
    except Exception:  # one source down: that figure says so, the page still answers
        log.warning("health console: could not read %s", name, exc_info=True)
        return None


def _jobs_url(**filters: str) -> str:
    return _changelist("jobs", "job", **{f"{name}__exact": value for name, value in filters.items()})


def _changelist(app: str, model: str, **filters: str) -> str:
    return f"{reverse(f'admin:{app}_{model}_changelist')}?{urlencode(filters)}"
