from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest


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
def seeded(transactional_db, emulator_reset, gateway_settings, settings) -> None:
    from tests.fixtures.live_web import seed_for_web

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    seed_for_web()


@pytest.fixture
def partner_key(seeded, user_factory):
    """make() -> a PartnerKey (scope messages) with its raw value on `.raw`."""
    from claudeapp.api import keys

    def make():
        key, raw = keys.create_key(owner=user_factory(), name="metrics", scopes=["messages"])
        key.raw = raw
        return key

    return make
