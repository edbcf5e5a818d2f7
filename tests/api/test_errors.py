from __future__ import annotations

import json
import random

import pytest

from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db

ECHO = "/api/v1/_test/echo"


@pytest.fixture
def key(partner_key_factory):
    return partner_key_factory()


def post(client, key, body, path=ECHO, content_type="application/json", **extra):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.generic("POST", path, data, content_type=content_type, **bearer(key), **extra)


def test_malformed_json_is_400_invalid_request(client, key):
    response = post(client, key, b'{"model": "x", "max_tokens": ')
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "message": "Request body is not valid JSON.",
        "field": None,
    }


def test_a_wrong_type_names_the_failing_field(client, key):
    response = post(client, key, {"model": "m", "max_tokens": "lots", "messages": [{"role": "user"}]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "max_tokens" and error["message"].startswith("max_tokens: ")


def test_a_nested_error_names_a_dotted_path(client, key):
    body = {"model": "m", "max_tokens": 5, "messages": [{}], "turns": [{"role": "user", "content": "a"}, {"role": "x"}]}
    response = post(client, key, body)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "turns.1.role"


def test_a_missing_required_field_is_named(client, key):
    response = post(client, key, {"max_tokens": 5, "messages": [{}]})
    assert response.status_code == 400 and response.json()["error"]["field"] == "model"


def test_a_body_over_the_limit_is_413_before_it_is_parsed(client, key, settings):
    settings.API_MAX_BODY_BYTES = 1024
    response = post(client, key, b'{"model": "' + b"x" * 4096 + b'"}')
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"


def test_the_api_cap_not_djangos_upload_cap_governs_async_bodies(client, key, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 512
    response = post(client, key, {"pad": "x" * 2048}, path="/api/v1/_test/async")
    assert response.status_code == 200
    settings.API_MAX_BODY_BYTES = 1024
    response = post(client, key, {"pad": "x" * 2048}, path="/api/v1/_test/async")
    assert response.status_code == 413 and response.json()["error"]["type"] == "request_too_large"


def test_djangos_request_data_too_big_maps_to_413():
    from django.core.exceptions import RequestDataTooBig

    from claudeapp.api.errors import describe

    info = describe(RequestDataTooBig("too big"))
    assert (info.status, info.type) == (413, "request_too_large")


def test_the_wrong_content_type_is_a_4xx_in_the_error_shape(client, key):
    response = post(client, key, b"model=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and "error" in response.json()


def test_an_unknown_api_url_is_404_in_the_error_shape(client):
    response = client.get("/api/v1/nope")
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found_error"


def test_a_wrong_method_is_405_in_the_error_shape(client, key):
    response = client.delete("/api/v1/me", **bearer(key))
    assert response.status_code == 405 and response.json()["error"]["type"] == "invalid_request_error"


JUNK = [
    b"",
    b"null",
    b"[]",
    b"[1, 2, 3]",
    b'"a string"',
    b"12345",
    b"\xff\xfe\x00garbage",
    b'{"model": null, "max_tokens": null, "messages": null}',
    b'{"model": {"$gt": ""}, "max_tokens": 1e400, "messages": "x"}',
    b'{"model": "m", "max_tokens": -1, "messages": [[[[[]]]]]}',
    b'{"model": "m", "max_tokens": 99999999999999999999999, "messages": [{"role": 1}]}',
    b'{"a":' * 5000,
    b'{"model": "\\ud800", "max_tokens": 1, "messages": [1]}',
    json.dumps({"model": "m" * 500, "max_tokens": True, "messages": [None]}).encode(),
]


@pytest.mark.parametrize("body", JUNK)
def test_garbage_bodies_never_cause_a_5xx(client, key, body):
    for path in (ECHO, "/api/v1/_test/async"):
        response = post(client, key, body, path=path)
        assert response.status_code < 500, (path, body[:40], response.content[:200])
        assert response.status_code in (200, 400), response.content[:200]


def test_random_bytes_never_cause_a_5xx(client, key):
    rng = random.Random(20261125)
    for _ in range(40):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        response = post(client, key, body)
        assert response.status_code == 400, response.content[:200]


def test_garbage_headers_never_cause_a_5xx(client, key):
    for headers in (
        {"HTTP_AUTHORIZATION": "Bearer"},
        {"HTTP_AUTHORIZATION": "Basic Zm9vOmJhcg=="},
        {"HTTP_X_API_KEY": ""},
        {"HTTP_X_API_KEY": "cgw_" + "\u00e9" * 60},
        {"CONTENT_LENGTH": "-1"},
        {"CONTENT_LENGTH": "abc"},
    ):
        response = client.get("/api/v1/me", **headers)
        assert 400 <= response.status_code < 500, headers


@pytest.mark.parametrize(
    ("name", "status", "error_type"),
    [
        ("budget", 402, "budget_exceeded"),
        ("ratelimit", 429, "rate_limit_error"),
        ("nomodel", 529, "overloaded_error"),  # one overload status on every surface: Anthropic's
        ("upstream429", 429, "rate_limit_error"),  # upstream's own 429 is not reported as an overload
        ("conflict", 409, "conflict_error"),
    ],
)
def test_registered_domain_errors_map_to_their_statuses(client, key, name, status, error_type):
    for path in (f"/api/v1/_test/raise/{name}", f"/api/v1/_test/async-raise/{name}"):
        response = client.get(path, **bearer(key))
        assert response.status_code == status, path
        assert response.json()["error"]["type"] == error_type


def test_rate_limited_carries_retry_after_and_rate_limit_headers(client, key):
    response = client.get("/api/v1/_test/raise/ratelimit", **bearer(key))
    assert response["retry-after"] == "3"
    assert response["x-ratelimit-limit-requests"] == "60" and response["x-ratelimit-remaining-requests"] == "0"


def test_a_402_names_the_budget_with_what_remains_what_is_held_and_when_it_resets(client, key):
    response = client.get("/api/v1/_test/raise/budget-partly", **bearer(key))
    error = response.json()["error"]
    assert error["budget"] == {
        "id": 7, "scope": "partner_key", "scope_id": 1, "period": "month", "limit_micros": 1000,
        "spent_micros": 700, "held_micros": 200, "remaining_micros": 100, "requested_micros": 400,
        "resets_at": "2026-12-01T00:00:00+00:00", "reason": "insufficient",
    }  # fmt: skip
    assert "lower max_tokens" in error["message"] and "partner_key 1 (month)" in error["message"]
    assert response["x-budget-remaining"] == "100" and response["x-budget-held"] == "200"
    assert response["x-budget-limit"] == "1000" and response["x-budget-reset"] == "2026-12-01T00:00:00+00:00"


def test_a_budget_used_up_says_so_rather_than_asking_for_a_smaller_request(client, key):
    error = client.get("/api/v1/_test/raise/budget-spent", **bearer(key)).json()["error"]
    assert error["budget"]["reason"] == "exhausted" and error["budget"]["remaining_micros"] == 0
    assert "is used up" in error["message"] and "max_tokens" not in error["message"]


def test_a_429_names_the_limit_that_refused(client, key):
    response = client.get("/api/v1/_test/raise/ratelimit-named", **bearer(key))
    error = response.json()["error"]
    assert error["limit"] == {
        "axis": "output-tokens",
        "scope": "partner_key",
        "limit": 8000,
        "retry_after_seconds": 2.2,
    }
    assert (
        error["message"]
        == "Rate limit exceeded: output tokens per minute (8000) of the partner_key policy; retry in 3 s."
    )
    assert response["retry-after"] == "3"


def test_an_unexpected_exception_is_500_api_error_with_the_request_id(client, key, caplog):
    for path in ("/api/v1/_test/raise/bug", "/api/v1/_test/async-raise/bug"):
        response = client.get(path, **bearer(key), HTTP_X_REQUEST_ID="trace-me-1")
        assert response.status_code == 500
        body = response.json()
        assert body["error"]["type"] == "api_error" and body["request_id"] == "trace-me-1"
        assert "boom" not in body["error"]["message"]  # internals stay in the log
    assert any("trace-me-1" in record.getMessage() for record in caplog.records)


def test_anthropic_paths_answer_in_anthropics_error_shape(client, key):
    response = client.get("/anthropic/v1/_test/raise/ratelimit", HTTP_X_API_KEY=key.raw)
    assert response.status_code == 429
    body = response.json()
    assert body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Rate limit exceeded; retry in 3 s."},
        "request_id": response["request-id"],
    }


def test_anthropic_paths_refuse_bad_keys_in_anthropics_shape(client):
    response = client.get("/anthropic/v1/models", HTTP_X_API_KEY="sk-ant-not-ours")
    assert response.status_code == 401
    assert response.json()["type"] == "error" and response.json()["error"]["type"] == "authentication_error"


def test_other_packages_can_register_their_domain_errors():
    from claudeapp.api.errors import describe, register_error

    class QuotaFrozen(Exception):
        def __init__(self, until: str) -> None:
            self.until = until

    class QuotaFrozenHard(QuotaFrozen):
        pass

    register_error(
        QuotaFrozen, 409, "conflict_error", lambda e: f"frozen until {e.until}", headers_fn=lambda e: {"x-a": "1"}
    )
    info = describe(QuotaFrozenHard("noon"))  # subclasses map like their base
    assert (info.status, info.type, info.message, info.headers) == (
        409,
        "conflict_error",
        "frozen until noon",
        {"x-a": "1"},
    )


# --- the one JSON parser: every kind of refusal names its field ------------------------------

ASYNC_ECHO = "/api/v1/_test/async"
VALID = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def _named(response, field):
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["field"] == field, error
    return error["message"]


@pytest.mark.parametrize("path", [ECHO, ASYNC_ECHO, "/api/v1/jobs"])
@pytest.mark.parametrize(
    ("raw", "field", "says"),
    [
        (b'{"metadata": {"a\\u0000b": "x"}}', "metadata.a\\u0000b", "NUL"),
        (b'{"messages": [{"role": "user", "content": "hi\\u0000"}]}', "messages.0.content", "NUL"),
        (b'{"metadata": {"k": [1, 2, "\\u0000"]}}', "metadata.k.2", "NUL"),
        (b'{"metadata": {"score": NaN}}', "metadata.score", "finite"),
        (b'{"metadata": {"score": -Infinity}}', "metadata.score", "finite"),
        (b'{"max_tokens": 1e400}', "max_tokens", "finite"),
        (b'{"model": "\\ud800"}', "model", "UTF-8"),
        (b'{"model": "caf\xe9"}', "model", "UTF-8"),
        (
            b'{"metadata": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_000 + b"}",
            "metadata" + ".a" * 63,
            "deeper than 64",
        ),
        (b'{"m": ' + b"[" * 65 + b"]" * 65 + b"}", "m" + ".0" * 63, "deeper than 64"),
    ],
)
def test_bad_json_values_are_400_naming_the_field_on_every_parser(client, key, path, raw, field, says):
    assert says in _named(post(client, key, raw, path=path), field)


@pytest.mark.parametrize("path", [ECHO, ASYNC_ECHO, "/api/v1/jobs"])
def test_nesting_up_to_the_limit_parses(client, key, path, settings):
    settings.API_MAX_JSON_DEPTH = 8
    ok = {**VALID, "metadata": {"a": {"b": {"c": {"d": {"e": {"f": {}}}}}}}}  # 8 levels with the body itself
    assert "deeper" not in post(client, key, ok, path=path).text
    too_deep = {**VALID, "metadata": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {}}}}}}}}}
    assert "deeper than 8" in _named(post(client, key, too_deep, path=path), "metadata.a.b.c.d.e.f.g")


@pytest.mark.parametrize("path", [ECHO, ASYNC_ECHO, "/api/v1/jobs"])
def test_a_body_that_is_not_an_object_is_400_without_a_field(client, key, path):
    for raw in (b"[]", b'"text"', b"1"):
        response = post(client, key, raw, path=path)
        assert response.status_code == 400
        assert response.json()["error"] == {
            "type": "invalid_request_error",
            "message": "Request body must be a JSON object.",
            "field": None,
        }


def test_anthropic_paths_name_the_field_in_the_message(client, key):
    response = client.generic(
        "POST", "/anthropic/v1/_test/async", b'{"metadata": {"a": NaN}}', content_type="application/json",
        HTTP_X_API_KEY=key.raw,
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "message": "metadata.a: Must be a finite number (NaN and Infinity are not JSON).",
    }


def test_a_body_read_past_the_cap_is_413_even_without_a_content_length(key, settings):
    """The view-level count: what the ASGI edge (bodycap) does for real servers, for any other handler."""
    import io

    from django.test import RequestFactory

    from claudeapp.api.bodies import json_object
    from claudeapp.api.errors import describe

    settings.API_MAX_BODY_BYTES = 1024
    request = RequestFactory().post("/api/v1/_test/async", b"", content_type="application/json")
    request._stream = io.BytesIO(b'{"pad": "' + b"x" * 4096 + b'"}')  # as a chunked body arrives: no length
    request.META.pop("CONTENT_LENGTH", None)
    with pytest.raises(Exception) as raised:
        json_object(request)
    assert (describe(raised.value).status, describe(raised.value).type) == (413, "request_too_large")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"end": "9999-12-31"}, "end"),
        ({"start": "9999-12-31"}, "start"),
        ({"start": "0001-01-01"}, "start"),
        ({"end": "9999-12-31T23:59:59-05:00"}, "end"),
        ({"start": "2026-02-30"}, "start"),
    ],
)
def test_out_of_range_dates_in_query_parameters_are_400_naming_the_parameter(client, key, params, field):
    _named(client.get("/api/v1/usage", params, **bearer(key)), field)


def test_out_of_range_dates_on_list_endpoints_are_400(client, key):
    _named(client.get("/api/v1/conversations", {"created_before": "9999-12-31"}, **bearer(key)), "created_before")
    assert client.get("/api/v1/usage", {"start": "1900-01-01", "end": "9998-12-31"}, **bearer(key)).status_code == 200
