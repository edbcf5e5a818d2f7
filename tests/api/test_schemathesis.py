"""Schemathesis over /api/schema/ against the live gateway (uvicorn) with a partner key holding every
scope: whatever it sends, no 5xx, and every response matches the documented schema."""

from __future__ import annotations

import json

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.api.hostile import KINDS, TEXT, send

pytestmark = pytest.mark.django_db(transaction=True)
MAX_EXAMPLES = 12  # per operation and mode: the whole run stays well under a minute
VERSION = {"anthropic-version": "2023-06-01"}  # every /anthropic call names one; /api/v1 ignores it
_TURN = {"max_tokens": 16, "messages": [{"role": "user", "content": "Say hello."}]}
VALID_BODIES = {
    "POST /api/v1/messages": {"model": "claude-haiku-5-5", **_TURN},
    "POST /anthropic/v1/messages": {"model": "claude-haiku-5-5", **_TURN},
}


@pytest.fixture
def full_key(partner_key_factory):
    return partner_key_factory(scopes=["messages", "conversations", "jobs", "usage", "models"])


def test_no_request_makes_the_api_fail_or_break_its_schema(live_gateway, full_key, partner_key_factory, emulator):
    # Driven from one test (not schemathesis' pytest plugin, which does not load under pytest 9).
    schema = schemathesis.openapi.from_url(f"{live_gateway.url}/api/schema/?format=json", timeout=10)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    # Rotating the calling key twice ends its first secret: that operation gets a key of its own.
    rotating = partner_key_factory(scopes=["messages"])
    failures: list[str] = []
    for operation in operations:
        raw = rotating.raw if operation.path == "/api/v1/keys/current/rotate" else full_key.raw
        try:
            _exercise(operation, live_gateway.url, raw)
        except Exception as exc:  # collect every operation's first failure, then report them together
            failures.append(f"{operation.label}: {exc}"[:2000])
    assert not failures, "\n\n".join(failures)
    # Random bodies rarely name a real model, so also check the documented success path: a valid
    # call reaches upstream and its 200 matches the schema too.
    before = emulator.stats()["by_path"].get("POST /v1/messages", 0)
    for label, body in VALID_BODIES.items():
        case = next(op for op in operations if op.label == label).Case(body=body, media_type="application/json")
        case.call_and_validate(
            base_url=live_gateway.url,
            headers={"x-api-key": full_key.raw, **VERSION},
            checks=[not_a_server_error, response_schema_conformance],
            timeout=20,
        )
    assert emulator.stats()["by_path"].get("POST /v1/messages", 0) >= before + len(VALID_BODIES)


def test_hostile_bodies_get_documented_4xx_on_every_operation_that_takes_a_body(live_gateway, full_key, emulator):
    """Every operation with a request body x every hostile kind (tests/api/hostile.py): a 4xx that
    matches the documented error schema, and nothing reaches upstream."""
    schema = schemathesis.openapi.from_url(f"{live_gateway.url}/api/schema/?format=json", timeout=10)
    operations = [result.ok() for result in schema.get_all_operations()]
    with_body = [op for op in operations if op.method.upper() in ("POST", "PUT", "PATCH")]
    expected = {"/api/v1/messages", "/api/v1/jobs", "/api/v1/conversations", "/api/v1/conversations/{conversation_id}",
                "/anthropic/v1/messages", "/anthropic/v1/messages/count_tokens"}  # fmt: skip
    assert {op.path for op in with_body} >= expected
    created = httpx.post(
        f"{live_gateway.url}/api/v1/conversations", json={"title": "t"}, headers={"x-api-key": full_key.raw}
    )
    ids = {"conversation_id": created.json()["id"], "job_id": "00000000-0000-0000-0000-000000000000"}
    valid = {"model": "claude-haiku-5-5", "max_tokens": 16, "messages": [{"role": "user", "content": TEXT}]}
    before = emulator.stats()["total_requests"]
    failures: list[str] = []
    for operation in with_body:
        params = {name: ids.get(name, "x") for name in _path_parameters(operation)}
        case = operation.Case(path_parameters=params, media_type="application/json")
        url = live_gateway.url + operation.path.format(**params)
        for kind, (build, chunked, _status, _field) in KINDS.items():
            response = send(url, operation.method.upper(), build(valid, "messages.0.content"), chunked=chunked,
                            key=full_key.raw)  # fmt: skip
            try:
                assert 400 <= response.status_code < 500, response.text[:300]
                readable = _readable(response) if chunked else response
                case.validate_response(readable, checks=[not_a_server_error, response_schema_conformance])
            except Exception as exc:
                failures.append(f"{operation.label} x {kind}: {exc}"[:1000])
    assert not failures, "\n\n".join(failures)
    assert emulator.stats()["total_requests"] == before, json.dumps(emulator.stats(last=5)["recent"])[:2000]


def _readable(response: httpx.Response) -> httpx.Response:
    """The response with a request schemathesis can read back for its report (a chunked one was a generator)."""
    request = httpx.Request(response.request.method, response.request.url, headers=response.request.headers,
                            content=b"(body elided)")  # fmt: skip
    copy = httpx.Response(response.status_code, headers=response.headers, content=response.content, request=request)
    copy.elapsed = response.elapsed
    return copy


def _path_parameters(operation) -> list[str]:
    return [p.name for p in operation.path_parameters]


def _exercise(operation, base_url: str, raw_key: str) -> None:
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)  # fmt: skip
    @given(case=operation.as_strategy())
    def run(case) -> None:
        case.call_and_validate(
            base_url=base_url,
            headers={"x-api-key": raw_key, **VERSION},
            checks=[not_a_server_error, response_schema_conformance],
            timeout=20,
        )

    run()
