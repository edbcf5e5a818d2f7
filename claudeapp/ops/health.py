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
from claudeapp.conversations.models import Message
from claudeapp.core import redisconn
from claudeapp.jobs import heartbeat
from claudeapp.jobs.models import Job
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
class CallFigures:
    since: dt.datetime
    calls: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None


def calls(*, now: dt.datetime | None = None) -> CallFigures:
    """Calls that ended in the last 15 minutes: the chat's answers (assistant Messages: complete,
    truncated or failed, by created_at; latency_ms) and jobs that finished (succeeded, failed or dead,
    by finished_at; finished_at - started_at). An error is a failed or truncated answer, a failed or dead
    job. Partner /v1/messages calls keep no per-call row with latency: they are in /metrics, not here."""
    since = (now or timezone.now()) - CALL_WINDOW
    message, job = Message._meta.db_table, Job._meta.db_table
    sql = f"""
        SELECT count(*), count(*) FILTER (WHERE failed),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)
        FROM (
            SELECT latency_ms::float AS ms, status IN ('failed', 'truncated') AS failed
            FROM {message}
            WHERE role = 'assistant' AND created_at >= %s AND status IN ('complete', 'truncated', 'failed')
            UNION ALL
            SELECT EXTRACT(EPOCH FROM finished_at - started_at) * 1000, status IN ('failed', 'dead')
            FROM {job} WHERE finished_at >= %s AND status IN ('succeeded', 'failed', 'dead')
        ) ended
    """  # noqa: S608  (table names from the models, values bound)
    with connection.cursor() as cursor:
        cursor.execute(sql, [since, since])
        count, errors, p50, p99 = cursor.fetchone()
    return CallFigures(since=since, calls=count, errors=errors, p50_ms=p50, p99_ms=p99)


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
