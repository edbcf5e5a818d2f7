"""A process stopped the ordinary way (SIGTERM, as systemd, Kubernetes and the Procfile's supervisor do) writes
the request-log rows it still held: uvicorn as the Procfile runs it (one process, and a supervisor with two
workers), and a Celery worker with the threads pool and with prefork.

Each process runs with a flush interval of an hour and a row threshold it never reaches, so its rows can
only reach the table through the shutdown flush. (A kill -9 loses them: the interrupted-call reaper writes
what it can through services.record_interrupted.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pytest

from claudeapp.requestlog.models import RequestLog
from tests.fixtures.live_web import PROJECT_ROOT, WebServer, database_url, free_port, seed_for_web, web_env
from tests.ops.workers import sole_consumer

pytestmark = pytest.mark.django_db(transaction=True)
NEVER_ON_ITS_OWN = {"REQUEST_LOG_FLUSH_SECONDS": "3600", "REQUEST_LOG_FLUSH_ROWS": "1000000"}


def _stop_with_sigterm(proc: subprocess.Popen, log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"did not stop on SIGTERM:\n{log.read_text(errors='replace')[-3000:]}") from None


class ProcfileWebServer(WebServer):
    """uvicorn started as the Procfile starts it (lifespan left on auto), `workers` processes under one
    supervisor when more than one."""

    def __init__(self, env: dict[str, str], *, workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(tempfile.mkdtemp(prefix="requestlog-web-")) / "uvicorn.log"
        argv = [sys.executable, "-m", "uvicorn", "claudeapp.asgi:application", "--host", "127.0.0.1",
                "--port", str(self.port), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                "--workers", str(workers)]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log)
        self._wait_ready()


@pytest.mark.parametrize("workers", [1, 2])
def test_uvicorn_sent_sigterm_writes_the_rows_it_held(workers, emulator_reset, user_factory):
    from django.db import connection

    from billing.models import Budget
    from claudeapp.api import keys

    seed_for_web()
    key, raw = keys.create_key(owner=user_factory(), name="nightly", scopes=["messages"], expires_at=None)
    env = web_env(database=database_url(connection.settings_dict), emulator_url=emulator_reset.url,
                  extra=NEVER_ON_ITS_OWN)  # fmt: skip
    server = ProcfileWebServer(env, workers=workers)
    try:
        body = {"model": "claude-haiku-5-5", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}
        with httpx.Client(base_url=server.url, timeout=30, headers={"authorization": f"Bearer {raw}"}) as http:
            assert http.post("/api/v1/messages", json=body).status_code == 200
            Budget.objects.create(scope="partner_key", scope_id=key.pk, period="day", limit_micros=1)
            assert http.post("/api/v1/messages", json=body).status_code == 402
        # Its key's rows only: a shared server's flush from an earlier test may land while this one runs.
        assert not RequestLog.objects.filter(principal_id=key.pk).exists()  # still in the web process's buffer
        _stop_with_sigterm(server.proc, server.log_path)
    finally:
        server.stop()
    rows = sorted(RequestLog.objects.filter(principal_id=key.pk).values_list("status", "http_status", "principal_id"))
    assert rows == [("complete", 200, key.pk), ("refused", 402, key.pk)], server.log()


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_a_celery_worker_sent_sigterm_writes_the_rows_it_held(pool, emulator_reset, user_factory, settings):
    from django.db import connection

    from claudeapp.accounts.principals import Principal
    from claudeapp.jobs import services
    from claudeapp.jobs.models import Job
    from tests.jobs.conftest import wait_for_status

    seed_for_web()
    env = web_env(database=database_url(connection.settings_dict), emulator_url=emulator_reset.url, extra={
        **NEVER_ON_ITS_OWN, "CELERY_BROKER_URL": settings.CELERY_BROKER_URL, "CELERY_SKIP_CHECKS": "1",
    })  # fmt: skip
    log = Path(tempfile.mkdtemp(prefix="requestlog-worker-")) / "worker.log"
    name = f"requestlog-{pool}-{uuid.uuid4().hex[:6]}@%h"
    argv = [sys.executable, "-m", "celery", "-A", "claudeapp", "worker", "--pool", pool, "--concurrency", "2",
            "-Q", "interactive,bulk", "-n", name, "--without-gossip", "--without-mingle",
            "--without-heartbeat", "--loglevel", "INFO"]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while " ready." not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.1)
        principal = Principal.for_user(user_factory())
        payload = {"model": "claude-haiku-5-5", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}
        with sole_consumer(name):  # tests/jobs' session worker, alive in a full run, must not take these
            jobs = [services.create(principal=principal, payload=payload) for _ in range(2)]
            wait_for_status([j.id for j in jobs], {"succeeded"})
            assert not RequestLog.objects.exists()  # still in the worker's buffer
            _stop_with_sigterm(proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert Job.objects.filter(status="succeeded").count() == 2
    rows = list(RequestLog.objects.values_list("status", "principal_id"))
    assert rows == [("complete", principal.id)] * 2, log.read_text(errors="replace")[-3000:]
