"""A job's worker carries the request id of the request that published it: the worker's JSON call line
for the job has it, with the job id and the billed figures, and the worker's counters reach /metrics.

The job must run on this module's worker, not on another one listening to the same broker: in a
full run, tests/jobs' session worker (text logs, no metrics dir) is still alive and consumes the
same queues, and took the job about half the time. `sole_consumer` asks every other worker to stop
consuming the job queues for the test and to resume afterwards.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.jobs.conftest import wait_for
from tests.ops.scraping import delta, scrape

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def json_worker(seeded, emulator, metrics_dir):
    """A real Celery worker (threads pool) with JSON logs, writing its counters to the web's metrics dir."""
    from django.conf import settings
    from django.db import connection

    from tests.fixtures.live_web import database_url
    from tests.jobs.conftest import JOB_TIMINGS, WORKER_ONLY, Worker

    env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "ANTHROPIC_BASE_URL": emulator.url,
        "ANTHROPIC_API_KEY": "",
        "LOG_FORMAT": "json",
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        **{name: str(value) for name, value in {**JOB_TIMINGS, **WORKER_ONLY}.items()},
    }
    worker = Worker(env, Path(tempfile.mkdtemp(prefix="ops-worker-")))
    try:
        yield worker
    finally:
        worker.stop()


JOB_QUEUES = ("interactive", "bulk")


@pytest.fixture
def sole_consumer(json_worker) -> Iterator[None]:
    """Every other worker on the broker stops consuming the job queues until the test ends (remote control)."""
    from celery import current_app

    ours = json_worker.name.replace("%h", socket.gethostname())
    names: set[str] = set()
    for _ in range(10):  # a busy machine may answer late: ask until our own worker has answered
        names |= {name for reply in current_app.control.ping(timeout=2.0) for name in reply}
        if ours in names:
            break
    assert ours in names, f"our worker did not answer a ping; others that did: {names}"
    others = sorted(names - {ours})
    for queue in JOB_QUEUES if others else ():
        current_app.control.cancel_consumer(queue, destination=others, reply=True, timeout=2.0)
    try:
        yield
    finally:
        for queue in JOB_QUEUES if others else ():
            current_app.control.add_consumer(queue, destination=others, reply=True, timeout=2.0)


def test_the_worker_logs_the_job_call_with_the_publishing_requests_id(
    metrics_web, json_worker, sole_consumer, user_factory
):
    from claudeapp.accounts.principals import Principal
    from claudeapp.core import logcontext
    from claudeapp.jobs import services
    from claudeapp.jobs.models import Job
    from tests.jobs.conftest import wait_for_status

    request_id, secret = f"req-job-{uuid.uuid4().hex}", f"okapi-{uuid.uuid4().hex}"
    payload = {"model": "claude-haiku-5-5", "max_tokens": 32, "messages": [{"role": "user", "content": secret}]}
    before = scrape(metrics_web.url)
    logcontext.bind(request_id=request_id, surface="api")  # as the web's middleware does for a request
    try:
        job = services.create(principal=Principal.for_user(user_factory()), payload=payload)
    finally:
        logcontext.clear()
    wait_for_status([job.pk], {"succeeded"})
    job = Job.objects.get(pk=job.pk)

    # The worker writes the line after the task returns, a moment after the job row says succeeded.
    wait_for(lambda: bool(_call_lines(json_worker.log_path, request_id)), timeout=15, what="the worker's call line")
    [line] = _call_lines(json_worker.log_path, request_id)
    assert (line["surface"], line["job_id"], line["status"]) == ("jobs", str(job.pk), "complete")
    assert line["model_used"] == job.model_used and line["upstream_request_id"] == job.upstream_request_id
    assert line["cost_micros"] == job.cost_micros > 0 and line["input_tokens"] > 0
    assert secret not in json_worker.log_path.read_text()
    labels = {"surface": "jobs", "status": "complete", "model": job.model_used}
    assert delta(before, scrape(metrics_web.url), "claudeapp_requests_total", **labels) == 1


def _call_lines(log_path: Path, request_id: str) -> list[dict]:
    lines = [json.loads(raw) for raw in log_path.read_text().splitlines() if raw.startswith("{")]
    return [x for x in lines if x.get("event") == "call" and x["request_id"] == request_id]
