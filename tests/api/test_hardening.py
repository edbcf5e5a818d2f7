"""OWASP API Top 10 / LiteLLM CVE-2026-42208 style checks on the key path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from claudeapp.api import keycache
from tests.api.conftest import bearer

PACKAGE = Path(__file__).resolve().parents[2] / "claudeapp" / "api"


def test_the_api_package_never_builds_sql_by_hand():
    # Key lookup went through raw SQL in LiteLLM's CVE-2026-42208; here only the ORM may query.
    pattern = re.compile(r"\.raw\(|\.extra\(|cursor\(|execute\(|RawSQL")
    offenders = [
        f"{path.name}:{number}"
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


@pytest.mark.django_db
def test_a_partner_key_does_not_open_the_admin(client, partner_key_factory, user_factory):
    key = partner_key_factory(owner=user_factory(is_staff=True, is_superuser=True))
    for headers in (bearer(key), {"HTTP_X_API_KEY": key.raw}):
        response = client.get("/admin/api/partnerkey/", **headers)
        assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.django_db
def test_a_partner_key_carries_no_staff_powers_into_api_views(client, partner_key_factory, user_factory):
    key = partner_key_factory(owner=user_factory(is_staff=True, is_superuser=True))
    response = client.get("/api/v1/me", **bearer(key))
    assert response.status_code == 200 and "is_staff" not in response.json()


@pytest.mark.django_db
def test_async_redis_clients_do_not_pile_up_across_event_loops(client, partner_key_factory):
    key = partner_key_factory()
    for _ in range(10):  # the test client runs each async view on a loop of its own
        assert client.post("/api/v1/_test/async", {}, content_type="application/json", **bearer(key)).status_code == 200
    assert len(keycache._async_clients) <= 2
