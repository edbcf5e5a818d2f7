from __future__ import annotations

import pytest

from claudeapp.api import keys
from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db

ECHO = "/api/v1/_test/echo"
GOOD_BODY = {"model": "claude-sonnet-5-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


def test_a_bearer_key_authenticates(client, partner_key_factory):
    key = partner_key_factory()
    response = client.get("/api/v1/me", **bearer(key))
    assert response.status_code == 200, response.json()
    assert response.json()["name"] == key.name and response.json()["owner"] == key.owner.username


def test_an_x_api_key_header_authenticates(client, partner_key_factory):
    key = partner_key_factory()
    response = client.get("/api/v1/me", HTTP_X_API_KEY=key.raw)
    assert response.status_code == 200


def test_me_shows_scopes_and_expiry_but_never_the_secret(client, partner_key_factory):
    key = partner_key_factory(scopes=["models"])
    body = client.get("/api/v1/me", **bearer(key)).json()
    assert body["scopes"] == ["models"] and body["expires_at"] is None
    assert body["key"] == key.masked and key.raw not in str(body)


def test_no_key_is_401_in_the_error_shape(client):
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer ' OR '1'='1",
        "Bearer ' OR (SELECT pg_sleep(5)) IS NULL --",
        "Bearer cgw_' UNION SELECT secret_hash FROM api_partnerkey --",
        "Bearer \x00\x01",
        "Bearer ",
        "Bearer " + "A" * 10000,
    ],
)
def test_injection_style_keys_are_401_without_reaching_the_database(client, header, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/api/v1/me", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["error"] == {"type": "authentication_error", "message": "Invalid API key.", "field": None}


def test_a_revoked_key_is_401_on_the_very_next_request(client, partner_key_factory):
    key = partner_key_factory()
    assert client.get("/api/v1/me", **bearer(key)).status_code == 200
    keys.revoke_key(key=key)
    response = client.get("/api/v1/me", **bearer(key))
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]


def test_an_expired_key_is_401(client, partner_key_factory, expired_at):
    key = partner_key_factory(expires_at=expired_at)
    assert client.get("/api/v1/me", **bearer(key)).status_code == 401


def test_a_key_without_the_scope_is_403_naming_it(client, partner_key_factory):
    key = partner_key_factory(scopes=["models"])
    response = client.post(ECHO, GOOD_BODY, content_type="application/json", **bearer(key))
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["type"] == "permission_error" and "'messages'" in error["message"]


def test_a_key_with_the_scope_passes_and_carries_its_principal(client, partner_key_factory):
    key = partner_key_factory(scopes=["messages"])
    response = client.post(ECHO, GOOD_BODY, content_type="application/json", **bearer(key))
    assert response.status_code == 200, response.json()
    assert response.json()["principal"] == f"partner_key:{key.pk}"


def test_a_session_login_does_not_open_the_partner_api(client, user_factory):
    client.force_login(user_factory(is_staff=True, is_superuser=True))
    assert client.get("/api/v1/me").status_code == 401


def test_the_async_guard_accepts_bearer_and_x_api_key(client, partner_key_factory):
    key = partner_key_factory(scopes=["messages"])
    for headers in (bearer(key), {"HTTP_X_API_KEY": key.raw}):
        response = client.post("/api/v1/_test/async", {"a": 1}, content_type="application/json", **headers)
        assert response.status_code == 200, response.json()
        assert response.json() == {"user": key.owner.username, "principal": f"partner_key:{key.pk}", "keys": ["a"]}


def test_the_async_guard_answers_401_and_403_in_the_same_shape(client, partner_key_factory):
    key = partner_key_factory(scopes=["models"])
    missing = client.post("/api/v1/_test/async", {}, content_type="application/json")
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "authentication_error"
    bad = client.post("/api/v1/_test/async", {}, content_type="application/json", HTTP_X_API_KEY="' OR 1=1 --")
    assert bad.status_code == 401 and set(bad.json()) == {"error", "request_id"}
    scoped = client.post("/api/v1/_test/async", {}, content_type="application/json", **bearer(key))
    assert scoped.status_code == 403 and "'messages'" in scoped.json()["error"]["message"]


def test_the_async_guard_on_anthropic_paths_answers_in_anthropics_shape(client):
    response = client.post("/anthropic/v1/_test/async", {}, content_type="application/json", HTTP_X_API_KEY="nope")
    assert response.status_code == 401
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    assert body["request_id"] == response["request-id"]
