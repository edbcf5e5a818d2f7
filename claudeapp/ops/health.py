"""The gateway's health figures, read now: shared by /metrics (metrics_view.py) and the admin's health console.

Each selector reads one source and raises if it cannot (Redis or Postgres down); the callers say so
per figure instead of failing the page or the scrape.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count, Min, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing import upstream
from billing.budgets import period_bounds
from billing.ledger import billing_day
from billing.models import Budget, DailyRollup
from claudeapp.claude import breaker
from claudeapp.core import redisconn
from claudeapp.jobs import heartbeat
from claudeapp.jobs.models import Job
from claudeapp.requestlog import services as requestlog
from claudeapp.requestlog.models import RequestLog
from routing import modelmap

CALL_WINDOW = dt.timedelta(minutes=15)


def breakers() -> list[breaker.BreakerStatus]:
    """Each enabled model's circuit (one Redis round trip per model)."""
    return [breaker.state(model_id) for model_id in modelmap.get_model_map().enabled_models]


@dataclass
class QueueFigure:
    queue: str
    depth: int = 0
    oldest: dt.datetime | None = None

    def oldest_age_seconds(self, now: dt.datetime) -> float:
        return max((now - self.oldest).total_seconds(), 0.0) if self.oldest else 0.0


@dataclass
class JobFigures:
    queues: dict[str, QueueFigure]
    by_status: dict[tuple[str, str], int] = field(default_factory=dict)  # (queue, status) -> rows
    dead: int = 0


def jobs() -> JobFigures:
    """Queued depth and oldest queued job per queue, rows by status, the dead-letter queue: one GROUP BY
    (finished rows are purged hourly by jobs-purge-finished, so the table stays small)."""
    rows = (
        Job.objects.order_by()
        .values("queue", "status")
        .annotate(n=Count("pk"), oldest=Min(Coalesce("enqueued_at", "created_at")))
    )
    figures = JobFigures(queues={queue: QueueFigure(queue) for queue in Job.Queue.values})
    for row in rows:
        figures.by_status[(row["queue"], row["status"])] = row["n"]
        if row["status"] == Job.Status.QUEUED:
            figures.queues[row["queue"]] = QueueFigure(row["queue"], row["n"], row["oldest"])
        elif row["status"] == Job.Status.DEAD:
            figures.dead += row["n"]
    return figures


def workers() -> list[str]:
    """host:pid of each worker process whose heartbeat wrote its Redis key within its 90 s expiry."""
    pattern = heartbeat.worker_key_pattern()
    prefix = pattern[:-1]
    names = (key.decode() if isinstance(key, bytes) else key for key in redisconn.client().scan_iter(pattern, 500))
    return sorted(name.removeprefix(prefix) for name in names)


@dataclass
class Headroom:
    model_id: str
    axes: dict[str, tuple[float, float]]  # axis -> (room now, limit)


def headroom() -> list[Headroom]:
    """The org's upstream limits learned from anthropic-ratelimit-* headers, per enabled model."""
    now_us = time.time() * 1e6
    return [
        Headroom(model_id, upstream.learned(model_id=model_id, now_us=now_us))
        for model_id in modelmap.get_model_map().enabled_models
    ]


@dataclass
class CallCounts:
    calls: int = 0  # calls that ran: every status but refused
    errors: int = 0
    refused: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None


@dataclass
class CallFigures:
    since: dt.datetime
    until: dt.datetime
    total: CallCounts
    # Each of SURFACES, in order (zeros when it had no call), then OTHER when it had any: the rows add up
    # to the total.
    surfaces: dict[str, CallCounts]


SURFACES = ("chat", "api", "anthropic", "jobs", "batches")
# Calls logged with no surface of SURFACES: outside any request or task (the surface is blank).
OTHER = "other"


def calls(*, now: dt.datetime | None = None) -> CallFigures:
    """Calls that ended in the last 15 minutes, from the request log (one row per call any surface
    answered): all of them and per surface, in one query; a row with a surface not in SURFACES (a blank one)
    counts under OTHER. A call ran unless it was refused (429/402,
    counted apart); its errors are the statuses in requestlog.services.ERROR_STATUSES; latency is the
    duration_ms of the calls that ran (an interrupted call has none). Rows are written in bulk a moment
    after the call ends, so the last half second may be missing."""
    until = now or timezone.now()
    since = until - CALL_WINDOW
    errors = ", ".join(f"'{status}'" for status in requestlog.ERROR_STATUSES)
    known = ", ".join(f"'{surface}'" for surface in SURFACES)
    sql = f"""
        SELECT GROUPING(row_surface), row_surface,
               count(*) FILTER (WHERE status <> 'refused'),
               count(*) FILTER (WHERE status IN ({errors})),
               count(*) FILTER (WHERE status = 'refused'),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE status <> 'refused'),
               percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE status <> 'refused')
        FROM (SELECT *, CASE WHEN surface IN ({known}) THEN surface ELSE '{OTHER}' END AS row_surface
              FROM {RequestLog._meta.db_table}
              WHERE created_at >= %s AND created_at <= %s) AS windowed
        GROUP BY GROUPING SETS ((row_surface), ())
    """  # noqa: S608  (table name, statuses and surfaces from the code, values bound)
    with connection.cursor() as cursor:
        cursor.execute(sql, [since, until])
        rows = cursor.fetchall()
    figures = CallFigures(since, until, CallCounts(), {surface: CallCounts() for surface in SURFACES})
    for is_total, surface, *counts in rows:
        if is_total:
            figures.total = CallCounts(*counts)
        else:
            figures.surfaces[surface] = CallCounts(*counts)
    return figures


@dataclass
class Spend:
    day: dt.date
    start: dt.datetime
    end: dt.datetime
    cost_micros: int
    requests: int


def spend_today(*, now: dt.datetime | None = None) -> Spend:
    """Billed today (the billing day in BILLING_TIME_ZONE), from the daily rollups kept with the ledger."""
    now = now or timezone.now()
    start, end = period_bounds(Budget.Period.DAY, now)
    day = billing_day(now)
    totals = DailyRollup.objects.filter(day=day).aggregate(cost=Sum("cost_micros"), requests=Sum("requests"))
    return Spend(day=day, start=start, end=end, cost_micros=totals["cost"] or 0, requests=totals["requests"] or 0)
