"""Postgres unreachable: every surface answers 503 with retry-after (the SDK retries it), never a 500.

The shared Postgres serves everybody's tests, so it is not stopped here: the web process under test
(a real uvicorn) is pointed at a port where nothing listens, which is what a stopped Postgres looks
like from the client side. Redis is real and up. Both connection paths are covered: psycopg's pool
(the default; it gives up after DB_POOL_TIMEOUT with PoolTimeout) and a direct connection (refused).
"""

from __future__ import annotations

import re

import anthropic
import httpx
import pytest

from claudeapp.api import keys
from tests.fixtures.live_web import WebServer, free_port, web_env

# Nothing here uses the test database; the marker only makes pytest-django create it, which the root
# conftest's session teardown (closing connection pools) expects even when a run has no database test.
pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module", params=["pool", "direct"])
def web_without_database(request):
    database = f"postgres://postgres@127.0.0.1:{free_port()}/nothing_listens_here"
    pool = {"DB_POOL": "1", "DB_POOL_TIMEOUT": "0.5"} if request.param == "pool" else {"DB_POOL": "0"}
    server = WebServer(web_env(database=database, emulator_url="http://127.0.0.1:9", extra=pool))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def raw_key() -> str:
    return keys.generate()[1]  # well-formed, so the gateway has to look it up in the database


def _assert_retryable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"


def test_the_partner_messages_endpoint_answers_503_in_the_api_shape(web_without_database, raw_key):
    response = httpx.post(
        f"{web_without_database.url}/api/v1/messages",
        json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {raw_key}"},
        timeout=30,
    )
    _assert_retryable(response)
    error = response.json()["error"]
    assert error["type"] == "service_unavailable" and "database" in error["message"]


def test_a_drf_endpoint_answers_503_in_the_api_shape(web_without_database, raw_key):
    response = httpx.get(
        f"{web_without_database.url}/api/v1/jobs", headers={"Authorization": f"Bearer {raw_key}"}, timeout=30
    )
    _assert_retryable(response)
    assert response.json()["error"]["type"] == "service_unavailable"


def test_the_anthropic_endpoint_answers_503_that_the_sdk_treats_as_retryable(web_without_database, raw_key):
    response = httpx.post(
        f"{web_without_database.url}/anthropic/v1/messages",
        json={"model": "claude-sonnet-5-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": raw_key, "anthropic-version": "2023-06-01"},
        timeout=30,
    )
    _assert_retryable(response)
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "api_error"

    client = anthropic.Anthropic(api_key=raw_key, base_url=f"{web_without_database.url}/anthropic", max_retries=0)
    with pytest.raises(anthropic.InternalServerError) as raised:  # 5xx: the SDK's retry rules cover it
        client.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert raised.value.status_code == 503
    client.close()


def test_a_browser_page_that_needs_the_database_answers_a_plain_503_page(web_without_database):
    with httpx.Client(base_url=web_without_database.url, timeout=30) as browser:
        browser.cookies.set("sessionid", "a-session-the-cache-does-not-hold")  # so it is read from Postgres
        response = browser.get("/")
    _assert_retryable(response)
    assert response.headers["content-type"].startswith("text/html")
    assert "cannot reach its database" in response.text and "Traceback" not in response.text


def test_signing_in_while_the_database_is_down_answers_the_503_page(web_without_database):
    with httpx.Client(base_url=web_without_database.url, timeout=30) as browser:
        form = browser.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        response = browser.post(
            "/accounts/login/", data={"csrfmiddlewaretoken": token, "username": "alice", "password": "secret"}
        )
    _assert_retryable(response)
    assert "cannot reach its database" in response.text
