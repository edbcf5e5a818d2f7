"""Leases that prove life: while a worker process runs jobs, one thread renews their leases.

A job's lease (Job.lease_expires_at) is short (JOBS_LEASE_SECONDS). Every third of it, the
process's heartbeat thread extends the lease of every job the process is running, in one
conditional UPDATE guarded by status=running and the attempt number, so a lease that another
worker took over (or a job that ended) is never revived. It also extends the attempt's budget
hold, so a call that outlives its first hold is not reaped while in flight. A worker that dies
stops beating: its leases run out within JOBS_LEASE_SECONDS and the sweeper runs the jobs again.
A webhook delivery in flight has a lease of its own (Job.webhook_lease_expires_at), renewed the same way.

One thread per process, not per job: the renewals cost one query per beat whatever the
concurrency, and one database connection, returned to the pool after each beat.

Each beat also says the process is alive: one Redis SET of `<prefix>:workers:<host>:<pid>` with a
90 s expiry (`announce`), which the admin's health console counts as "workers seen in the last minute".
Worker processes start the thread when they start (claudeapp/celery.py), so an idle worker is seen too.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from uuid import UUID

from django.conf import settings
from django.db import connections
from django.db.models import Q
from django.utils import timezone

from claudeapp.core import redisconn
from claudeapp.jobs import upstream
from claudeapp.jobs.models import Job

logger = logging.getLogger(__name__)


@dataclass
class Beat:
    """One running attempt; the runner sets `reservation_id` once the budget hold is taken.
    With `webhook` set, the attempt is one of the job's webhook deliveries (webhooks.deliver)."""

    job_id: UUID
    attempt: int
    reservation_id: int | None = None
    webhook: bool = False


_lock = threading.Lock()
_beats: dict[int, Beat] = {}  # keyed by id(beat): one job may briefly have two attempts in one process
_thread: list[tuple[int, threading.Thread]] = []  # (pid, thread): a forked child starts its own


@contextmanager
def beating(*, job: Job) -> Iterator[Beat]:
    """Keep `job`'s lease (and its budget hold) alive for the duration of the block."""
    with _registered(Beat(job_id=job.pk, attempt=job.attempts)) as beat:
        yield beat


@contextmanager
def delivering(*, job_id: UUID, attempt: int) -> Iterator[Beat]:
    """Keep the lease of a job's webhook delivery `attempt` alive for the duration of the block."""
    with _registered(Beat(job_id=job_id, attempt=attempt, webhook=True)) as beat:
        yield beat


@contextmanager
def _registered(beat: Beat) -> Iterator[Beat]:
    with _lock:
        _beats[id(beat)] = beat
        _ensure_thread()
    try:
        yield beat
    finally:
        with _lock:
            _beats.pop(id(beat), None)


def interval_seconds() -> float:
    return max(settings.JOBS_LEASE_SECONDS / 3, 0.2)


def renew(beats: list[Beat]) -> int:
    """Extend these attempts' leases and holds now; returns how many leases were still ours."""
    now = timezone.now()
    lease = now + dt.timedelta(seconds=settings.JOBS_LEASE_SECONDS)
    runs = [beat for beat in beats if not beat.webhook]
    deliveries = [beat for beat in beats if beat.webhook]
    renewed = 0
    if runs:
        owned = Q()
        for beat in runs:
            owned |= Q(pk=beat.job_id, attempts=beat.attempt)
        renewed += Job.objects.filter(owned, status=Job.Status.RUNNING).update(lease_expires_at=lease)
        upstream.extend_holds(reservation_ids=[b.reservation_id for b in runs if b.reservation_id], now=now)
    if deliveries:
        owned = Q()
        for beat in deliveries:
            owned |= Q(pk=beat.job_id, webhook_attempt=beat.attempt)
        renewed += Job.objects.filter(owned, webhook_lease_expires_at__isnull=False).update(
            webhook_lease_expires_at=lease
        )
    return renewed


WORKER_KEY_TTL_SECONDS = 90


def worker_key_pattern() -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:workers:*"


def announce() -> None:
    """Say in Redis that this worker process is alive (read by claudeapp/ops/health.py)."""
    name = f"{socket.gethostname()}:{os.getpid()}"
    key = worker_key_pattern()[:-1] + name
    redisconn.client().set(key, timezone.now().isoformat(), ex=WORKER_KEY_TTL_SECONDS)


def start(**_: object) -> None:
    """Start this process's heartbeat thread (a Celery worker signal receiver; idempotent per pid)."""
    with _lock:
        _ensure_thread()


def _ensure_thread() -> None:
    pid = os.getpid()
    if _thread and _thread[0][0] == pid and _thread[0][1].is_alive():
        return
    thread = threading.Thread(target=_loop, name="jobs-heartbeat", daemon=True)
    _thread[:] = [(pid, thread)]
    thread.start()


def _loop() -> None:
    while True:
        time.sleep(interval_seconds())
        try:
            announce()
        except redisconn.UNAVAILABLE:
            logger.warning("jobs heartbeat: could not announce this worker in Redis", exc_info=True)
        with _lock:
            beats = list(_beats.values())
        if not beats:
            continue
        try:
            renew(beats)
        except Exception:
            # A missed beat is not fatal: the lease has two more thirds to run. Keep beating.
            logger.warning("jobs heartbeat: renewing %s lease(s) failed", len(beats), exc_info=True)
        finally:
            connections.close_all()  # this thread's connection only: back to the pool between beats
