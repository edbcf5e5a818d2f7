from __future__ import annotations

import socket

import httpx
import pytest
from django.test import override_settings

from tests.fixtures.live_web import WebServer, free_port, web_env


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


@pytest.fixture
def silent_port():
    """A port that accepts TCP connections and never answers: what a hung server looks like."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # never accepted: the kernel completes the handshake, nobody ever replies
        yield listener.getsockname()[1]


def _readyz_of_a_web(*, database: str, broker: str) -> dict:
    server = WebServer(web_env(database=database, emulator_url="http://127.0.0.1:9",
                               extra={"DB_POOL": "0", "CELERY_BROKER_URL": broker}))  # fmt: skip
    try:
        response = httpx.get(f"{server.url}/readyz", timeout=30)
    finally:
        server.stop()
    assert response.status_code == 503, response.text
    return response.json()


@pytest.mark.django_db
def test_a_hanging_broker_does_not_delay_or_mask_the_postgres_verdict(silent_port):
    # Postgres on a port where nothing listens (refused at once), the broker on one that never answers.
    body = _readyz_of_a_web(database=f"postgres://postgres@127.0.0.1:{free_port()}/x",
                            broker=f"redis://127.0.0.1:{silent_port}/0")  # fmt: skip
    assert body["failing"] == ["postgres", "broker"]
    assert body["checks"]["redis"] == "ok"
    # Postgres's own verdict (the refusal), not a timeout spent queued behind the broker's hang.
    assert body["checks"]["postgres"].startswith("OperationalError"), body
    assert "refused" in body["checks"]["postgres"]
    assert body["checks"]["broker"].startswith("TimeoutError"), body


@pytest.mark.django_db
def test_a_hanging_postgres_does_not_delay_or_mask_the_broker_verdict(silent_port):
    body = _readyz_of_a_web(database=f"postgres://postgres@127.0.0.1:{silent_port}/x",
                            broker=f"redis://127.0.0.1:{free_port()}/0")  # fmt: skip
    assert body["failing"] == ["postgres", "broker"]
    assert body["checks"]["postgres"].startswith("TimeoutError"), body
    assert "refused" in body["checks"]["broker"], body
