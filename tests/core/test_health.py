from __future__ import annotations

import pytest
from django.test import override_settings


def test_healthz_says_the_process_is_alive(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_200_when_postgres_redis_and_broker_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"] == {"postgres": "ok", "redis": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_readyz_is_503_naming_redis_when_redis_is_unreachable(client):
    # Port 1 on loopback refuses connections: a real unreachable Redis, nothing mocked.
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["redis"]
    assert body["checks"]["postgres"] == "ok"
    assert "redis" in body["checks"] and body["checks"]["redis"] != "ok"


@pytest.mark.django_db
def test_readyz_is_503_naming_the_broker_when_it_is_unreachable(client):
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0"):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]
