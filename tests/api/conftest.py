from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone


@pytest.fixture(autouse=True)
def _api_urls(settings):
    # The site's API routes (included verbatim) plus test-only endpoints under the same prefixes.
    settings.ROOT_URLCONF = "tests.api.urls"
    # Every key needs an owner; PBKDF2 for each would dominate this folder's run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def partner_key_factory(user_factory):
    """make(scopes=..., owner=..., expires_at=...) -> PartnerKey with the raw key on `.raw`."""
    from claudeapp.api import keys
    from claudeapp.api.models import Scope

    def make(*, owner=None, name="partner", scopes=tuple(Scope.values), expires_at=None):
        key, raw = keys.create_key(owner=owner or user_factory(), name=name, scopes=scopes, expires_at=expires_at)
        key.raw = raw
        return key

    return make


@pytest.fixture
def expired_at():
    return timezone.now() - dt.timedelta(minutes=1)


@pytest.fixture
def model_map(db):
    """Three enabled models, one disabled, and an alias: the routing model map the API lists."""
    from routing.models import Model, ModelAlias

    rows = [
        ("claude-opus-5-5", "Claude Opus 5.5", "opus", True, 1),
        ("claude-sonnet-5-5", "Claude Sonnet 5.5", "sonnet", True, 2),
        ("claude-haiku-5-5", "Claude Haiku 5.5", "haiku", True, 3),
        ("claude-mythos-5-2", "Claude Mythos 5.2", "mythos", False, 4),
    ]
    models = {
        model_id: Model.objects.create(
            model_id=model_id, display_name=name, family=family, enabled=enabled, sort_order=order
        )
        for model_id, name, family, enabled, order in rows
    }
    ModelAlias.objects.create(name="moderate", model=models["claude-sonnet-5-5"])
    return models


def bearer(key) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key.raw}"}


@pytest.fixture(scope="package")
def gateway_web(django_db_setup, django_db_blocker, emulator):
    """The gateway under uvicorn (one per test package run), on the test database and emulator."""
    from django.db import connection

    from tests.fixtures.live_web import WebServer, database_url, web_env

    server = WebServer(web_env(database=database_url(connection.settings_dict), emulator_url=emulator.url))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def live_gateway(transactional_db, gateway_web, emulator_reset, gateway_settings):
    """A seeded database (models, prices, rules), closed circuits and a fresh emulator, for the live server."""
    from tests.fixtures.live_web import seed_for_web, unsettled, wait_settled

    seed_for_web()
    before = unsettled()
    yield gateway_web
    wait_settled(before)  # before the flush


@pytest.fixture
def seeded_api(transactional_db, gateway_settings):
    """The same seed for in-process (AsyncClient) tests."""
    from tests.fixtures.live_web import seed_for_web

    seed_for_web()


@pytest.fixture
def queued_job(db):
    """make(key, mode=..., status=..., batch=...) -> a Job row of the key's principal, as jobs.services.create
    leaves it (routed payload); for tests of what happens to a key's jobs, not of how they are created."""
    from claudeapp.jobs.models import Job

    def make(key, *, mode="queue", status="queued", batch=None):
        return Job.objects.create(
            principal_kind="partner_key",
            principal_id=key.pk,
            user_id=key.owner_id,
            payload={"model": "claude-haiku-5-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
            mode=mode,
            status=status,
            model_requested="auto",
            batch=batch,
        )

    return make
