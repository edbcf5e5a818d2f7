"""Real Celery workers (subprocesses) against the test database, the test's Redis db and the emulator.

The worker and the test process share the short timings below: the worker through its
environment, the test process through settings overrides (the sweeper runs in-process).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis

from tests.fixtures.live_web import database_url

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Short on purpose: a killed worker's jobs come back after the lease (a live one renews it every
# 1.3 s), retries wait well under a second. The call timeout is longer than the lease: a live call
# is kept by its heartbeat, not by a lease sized for the slowest call.
JOB_TIMINGS: dict[str, Any] = {
    "JOBS_MAX_ATTEMPTS": 3,
    "JOBS_LEASE_SECONDS": 4,
    "JOBS_CALL_TIMEOUT_SECONDS": 20.0,
    "JOBS_QUEUED_STALE_SECONDS": 1,
    "JOBS_RETRY_BASE_SECONDS": 0.2,
    "JOBS_RETRY_MAX_SECONDS": 1.0,
    "JOBS_WEBHOOK_RETRY_BASE_SECONDS": 0.2,
    "JOBS_WEBHOOK_MAX_ATTEMPTS": 3,
}
# Worker-only: the job row owns retries (one gateway attempt per model), a 529 storm must not open
# the shared circuit for other tests, and prices are reloaded when a test reseeds them (see seeded_models).
WORKER_ONLY = {
    "CLAUDE_MAX_ATTEMPTS": 1,
    "CLAUDE_BREAKER_FAILURE_THRESHOLD": 100000,
    "JOBS_WEBHOOK_ALLOW_PRIVATE": 1,
    "BILLING_CACHE_SECONDS": 0,  # check the price version on every read (tests reseed prices)
    "MODEL_MAP_REFRESH_SECONDS": 0,
    "CELERY_WORKER_CONCURRENCY": 8,
    "DB_POOL_MAX_SIZE": 12,
    "CELERY_SKIP_CHECKS": 1,  # `manage.py check` runs in CI; a worker must not refuse to start over a URL check
}


class Worker:
    """One `celery worker --pool threads` process; kill() is a SIGKILL to it."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.name = f"jobs-test-{uuid.uuid4().hex[:8]}@%h"
        self.log_path = log_dir / f"{self.name.split('@')[0]}.log"
        argv = [sys.executable, "-m", "celery", "-A", "claudeapp", "worker", "--pool", "threads",
                "-Q", "interactive,bulk", "-n", self.name, "--without-gossip", "--without-mingle",
                "--without-heartbeat", "--loglevel", "INFO"]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                argv, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log, start_new_session=True
            )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log_path.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"celery worker did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


class Workers:
    """The session's worker; a test that kills it gets a fresh one from ensure()."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.log_dir = Path(tempfile.mkdtemp(prefix="jobs-workers-"))
        self.current: Worker | None = None

    def alive(self) -> bool:
        return self.current is not None and self.current.proc.poll() is None

    def ensure(self) -> Worker:
        if self.current is None or self.current.proc.poll() is not None:
            self.current = Worker(self.env, self.log_dir)
        return self.current

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings) -> None:
    # Most tests here make a principal, whose user gets a password: PBKDF2 took 0.24 s of each test's
    # setup (about a minute over the folder). No test here is about passwords; workers never hash one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


_SESSION_WORKERS: list[Workers] = []  # for the teardown below, which must not start one


@pytest.fixture(scope="session")
def job_workers(django_db_setup, django_db_blocker, emulator) -> Iterator[Workers]:
    from django.conf import settings
    from django.db import connection

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # only our own db: stale messages of old runs
    env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),  # the test database, test_<name>
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "ANTHROPIC_BASE_URL": emulator.url,
        "ANTHROPIC_API_KEY": "",
        **{name: str(value) for name, value in {**JOB_TIMINGS, **WORKER_ONLY}.items()},
    }
    workers = Workers(env)
    _SESSION_WORKERS.append(workers)
    try:
        yield workers
    finally:
        workers.stop()
        _SESSION_WORKERS.remove(workers)


@pytest.fixture(autouse=True)
def quiet_queue_at_teardown(transactional_db) -> Iterator[None]:
    """Let the worker go idle before the test database is truncated.

    A worker still claiming a row while the flush truncates would deadlock with it, so queued
    jobs are canceled (their messages become no-ops), running ones are waited for, and then the
    messages the worker still has to take.
    """
    yield
    from claudeapp.jobs.models import Job

    Job.objects.filter(status="queued").update(status="canceled")
    wait_for(lambda: not Job.objects.filter(status="running").exists(), timeout=15, what="running jobs to end")
    live = [workers for workers in _SESSION_WORKERS if workers.alive()]
    if not live:
        return  # nobody consumes: nothing can be claimed during the flush
    # The worker has finished (acks late) what it was given: the queues are empty and nothing it took,
    # or that came due, in the last second is unacked (a countdown not due yet is a no-op when it fires,
    # the job being canceled). Looked at twice, as a popped message reaches the unacked hash a moment
    # later. Older unacked messages are a killed worker's, left to Redis's visibility timeout. As long
    # as the worker takes, instead of a fixed 0.2 s after every test.
    broker = redis.Redis.from_url(live[0].env["CELERY_BROKER_URL"])
    try:
        wait_for(lambda: _broker_quiet(broker) and (time.sleep(0.05) or _broker_quiet(broker)), timeout=5,
                 what="the worker to go idle")  # fmt: skip
    except AssertionError:
        pass  # a wedged worker is the test's own failure, not the teardown's
    finally:
        broker.close()


def _broker_quiet(broker: redis.Redis) -> bool:
    if broker.llen("interactive") or broker.llen("bulk"):
        return False
    now = time.time()
    taken = dict(broker.zrange("unacked_index", 0, -1, withscores=True))  # when the worker took each
    for tag, raw in broker.hgetall("unacked").items():
        eta = _eta(raw)
        if eta is not None and eta > now:
            continue  # a countdown not due yet: the worker holds it without running anything
        if (eta is not None and eta > now - 1.0) or taken.get(tag, 0.0) > now - 1.0:
            return False  # taken, or come due, in the last second: may be running now
    return True


def _eta(raw: bytes) -> float | None:
    try:
        eta = json.loads(raw)[0]["headers"].get("eta")
        return dt.datetime.fromisoformat(eta).timestamp() if eta else None
    except (ValueError, KeyError, IndexError, TypeError):
        return None


@pytest.fixture
def worker(job_workers: Workers, settings, seeded_models) -> Worker:
    for name, value in JOB_TIMINGS.items():
        setattr(settings, name, value)
    return job_workers.ensure()


@pytest.fixture
def no_worker(job_workers: Workers, seeded_models) -> None:
    """For tests that need jobs to stay queued: no worker consumes until a later test asks for one."""
    job_workers.stop()


@pytest.fixture
def seeded_models(transactional_db) -> None:
    from billing import prices
    from billing import seed as billing_seed
    from routing import seed as routing_seed

    routing_seed.run(stdout=StringIO())
    billing_seed.run(stdout=StringIO())
    prices._cache.clear()
    # Every test reseeds prices with new ids: move the shared version key so workers reload theirs.
    prices._cache.bump()


@pytest.fixture
def slow_receiver() -> Iterator[SimpleNamespace]:
    """A webhook receiver that records each POST and answers 204; the first one is held open for
    `hold["seconds"]` first (a delivery in flight when its worker dies, or one longer than its lease)."""
    received: list[dict] = []
    first_arrived, release = threading.Event(), threading.Event()
    hold = {"seconds": 0.0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"attempt": self.headers.get("X-Gateway-Delivery-Attempt")})
            if len(received) == 1:
                first_arrived.set()
                release.wait(hold["seconds"])
            try:
                self.send_response(204)
                self.end_headers()
            except OSError:
                pass  # the sender died while this POST was held

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}/hook", received=received,
                          first_arrived=first_arrived, hold=hold)  # fmt: skip
    release.set()
    server.shutdown()


def webhook_owed(job_id: Any) -> dict[str, Any]:
    """What the job row says it owes of its webhook: the attempt, when it is due, its delivery's lease."""
    from claudeapp.jobs.models import Job

    return Job.objects.filter(pk=job_id).values("webhook_attempt", "webhook_due_at", "webhook_lease_expires_at")[0]


@pytest.fixture
def principal(user_factory):
    from claudeapp.accounts.principals import Principal

    return Principal.for_user(user_factory())


@pytest.fixture
def payload_factory() -> Callable[..., dict[str, Any]]:
    def make(text: str = "Say hello.", **fields: Any) -> dict[str, Any]:
        # Haiku has no fallback, so fault counts are per job. A nonce keeps faults (keyed on the body) per test.
        body = f"{text} (nonce {uuid.uuid4().hex[:8]})"
        return {"model": "claude-haiku-5-5", "max_tokens": 64, "messages": [{"role": "user", "content": body}],
                **fields}  # fmt: skip

    return make


def wait_for(predicate: Callable[[], bool], *, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def wait_for_status(job_ids: list[Any], statuses: set[str], *, timeout: float = 30.0) -> None:
    from claudeapp.jobs.models import Job

    def done() -> bool:
        return Job.objects.filter(pk__in=job_ids, status__in=statuses).count() == len(job_ids)

    wait_for(done, timeout=timeout, what=f"{len(job_ids)} job(s) to reach {statuses}")
