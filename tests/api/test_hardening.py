"""OWASP API Top 10 / LiteLLM CVE-2026-42208 style checks on the key path."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from claudeapp.core import redisconn
from tests.api.conftest import bearer
from tests.api.hostile import KINDS, TEXT, send

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
    assert len(redisconn._async_clients) <= 2


# --- hostile bodies on every partner endpoint, over real HTTP (uvicorn) -------------------------
#
# Each endpoint x each kind of bad body (tests/api/hostile.py): a 4xx in the path's error shape
# naming the field where there is one, and not one request reaches the upstream (the emulator
# counts every request it gets).

HAIKU = "claude-haiku-5-5"


def _turn() -> dict:
    return {"model": HAIKU, "max_tokens": 16, "messages": [{"role": "user", "content": TEXT}]}


# name -> (method, path template, valid body, the dotted path of its text field)
ENDPOINTS = {
    "messages": ("POST", "/api/v1/messages", _turn(), "messages.0.content"),
    "conversation-turn": (
        "POST", "/api/v1/messages", {"conversation_id": "{cid}", "model": HAIKU, "content": TEXT}, "content"),
    "conversations": ("POST", "/api/v1/conversations", {"title": TEXT}, "title"),
    "conversation": ("PATCH", "/api/v1/conversations/{cid}", {"title": TEXT}, "title"),
    "jobs": ("POST", "/api/v1/jobs", _turn(), "messages.0.content"),
    "anthropic-messages": ("POST", "/anthropic/v1/messages", _turn(), "messages.0.content"),
    "anthropic-count-tokens": (
        "POST", "/anthropic/v1/messages/count_tokens",
        {"model": HAIKU, "messages": [{"role": "user", "content": TEXT}]}, "messages.0.content"),
}  # fmt: skip


def _problem(name: str, kind: str, response: httpx.Response, status: int, field: str | None) -> str | None:
    where = f"{name} x {kind}: {response.status_code} {response.text[:300]}"
    if response.status_code != status:
        return where
    body = response.json()
    if name.startswith("anthropic"):  # Anthropic's shape: the field leads the message
        if body.get("type") != "error" or set(body["error"]) != {"type", "message"}:
            return where
        message = body["error"]["message"]
        named = message.startswith(f"{field}: ") if field else ":" not in message.split(" ")[0]
    else:
        if set(body["error"]) != {"type", "message", "field"}:
            return where
        message = body["error"]["message"]
        named = body["error"]["field"] == field
    expected_type = "request_too_large" if status == 413 else "invalid_request_error"
    if body["error"]["type"] != expected_type or not named:
        return f"{where} (expected field {field!r})"
    return None


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_hostile_bodies_get_a_4xx_naming_the_field_and_never_reach_upstream(
    live_gateway, partner_key_factory, emulator, name
):
    key = partner_key_factory(scopes=["messages", "conversations", "jobs", "usage", "models"])
    method, path, body, text_field = ENDPOINTS[name]
    created = httpx.post(
        f"{live_gateway.url}/api/v1/conversations", json={"title": "t"}, headers={"x-api-key": key.raw}, timeout=30
    )
    cid = created.json()["id"]
    path = path.format(cid=cid)
    body = json.loads(json.dumps(body).replace("{cid}", cid))
    problems = []
    for kind, (build, chunked, status, field) in KINDS.items():
        before = emulator.stats()["total_requests"]
        response = send(live_gateway.url + path, method, build(body, text_field), chunked=chunked, key=key.raw)
        problem = _problem(name, kind, response, status, field.replace("{text}", text_field) if field else None)
        if problem:
            problems.append(problem)
        if emulator.stats()["total_requests"] != before:
            problems.append(f"{name} x {kind}: reached upstream")
    assert not problems, "\n".join(problems)
    # The valid body still works (and, for the message endpoints, is the one that goes upstream).
    response = send(live_gateway.url + path, method, json.dumps(body).encode(), chunked=True, key=key.raw)
    assert response.status_code in (200, 201, 202), response.text[:300]
