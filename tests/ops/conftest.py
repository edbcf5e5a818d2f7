from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ops import workers


@pytest.fixture(scope="module")
def metrics_dir() -> str:
    """PROMETHEUS_MULTIPROC_DIR for the module's web processes (empty at start, as scripts/run.sh leaves it)."""
    return tempfile.mkdtemp(prefix="prom-multiproc-")


@pytest.fixture(scope="module")
def metrics_web(django_db_setup, django_db_blocker, emulator, metrics_dir) -> Iterator:
    """The gateway under uvicorn, in multiprocess metrics mode and with JSON logs (as in production)."""
    from django.db import connection

    from tests.fixtures.live_web import WebServer, database_url, web_env

    env = web_env(
        database=database_url(connection.settings_dict),
        emulator_url=emulator.url,
        extra={"PROMETHEUS_MULTIPROC_DIR": metrics_dir, "LOG_FORMAT": "json"},
    )
    server = WebServer(env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def seeded(transactional_db, emulator_reset, gateway_settings, settings) -> Iterator[None]:
    from tests.fixtures.live_web import seed_for_web, unsettled, wait_settled

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    seed_for_web()
    before = unsettled()
    yield
    wait_settled(before)  # before the flush


@pytest.fixture
def partner_key(seeded, user_factory):
    """make() -> a PartnerKey (scope messages) with its raw value on `.raw`."""
    from claudeapp.api import keys

    def make():
        key, raw = keys.create_key(owner=user_factory(), name="metrics", scopes=["messages"])
        key.raw = raw
        return key

    return make


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


@pytest.fixture
def sole_consumer(json_worker) -> Iterator[None]:
    """Every other worker on the broker stops consuming the job queues until the test ends (remote control)."""
    with workers.sole_consumer(json_worker.name):
        yield
