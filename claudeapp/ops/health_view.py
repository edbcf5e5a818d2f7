"""GET /admin/health/: the operators' health console, every figure of claudeapp/ops/health.py with a link
to the admin list behind it. Staff with jobs.view_job see it; other staff get 403, anyone else the login.

A figure whose source is down (Redis, Postgres) shows "unavailable" and the rest of the page still renders.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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
        "spend": spend,
        "spend_dollars": f"{spend.cost_micros / 1e6:,.2f}" if spend else None,
        "error_rate_percent": f"{calls.error_rate * 100:.1f}" if calls and calls.error_rate is not None else None,
        "links": {
            "breakers": reverse("breakers"),
            "dead": reverse("admin:jobs_deadjob_changelist"),
            "running": _jobs_url(status="running"),
            "models": reverse("admin:routing_model_changelist"),
            "failed_answers": _changelist("conversations", "message", role__exact="assistant", status__exact="failed"),
            "answers": _changelist("conversations", "message", role__exact="assistant"),
            "failed_jobs": _jobs_url(status="failed"),
            "finished_jobs": _jobs_url(status="succeeded"),
            "ledger_today": _changelist(
                "billing", "ledgerentry", created_at__gte=spend.start.isoformat(), created_at__lt=spend.end.isoformat()
            )
            if spend
            else None,
        },
    }
    return render(request, "ops/health.html", context)


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
