from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.django_db


def test_every_response_gets_a_generated_request_id(client):
    response = client.get("/api/v1/me")
    assert re.fullmatch(r"req_[0-9a-f]{32}", response["x-request-id"])
    assert response.json()["request_id"] == response["x-request-id"]


def test_a_sane_caller_request_id_is_echoed(client):
    response = client.get("/api/v1/me", HTTP_X_REQUEST_ID="partner-abc.123_X")
    assert response["x-request-id"] == "partner-abc.123_X"


@pytest.mark.parametrize("unsafe", ["a b", "x" * 129, "<script>", "id\r\nSet-Cookie: a=b", "é", ""])
def test_an_unsafe_caller_request_id_is_replaced(client, unsafe):
    response = client.get("/api/v1/me", HTTP_X_REQUEST_ID=unsafe)
    assert re.fullmatch(r"req_[0-9a-f]{32}", response["x-request-id"])


def test_two_requests_get_different_ids(client):
    assert client.get("/api/v1/me")["x-request-id"] != client.get("/api/v1/me")["x-request-id"]


def test_anthropic_paths_also_answer_the_request_id_header_the_sdk_reads(client):
    response = client.get("/anthropic/v1/models", HTTP_X_REQUEST_ID="abc", HTTP_ANTHROPIC_VERSION="2026-10-21")
    assert response["request-id"] == response["x-request-id"] == "abc"


def test_non_api_pages_get_a_request_id_too(client):
    assert client.get("/admin/login/")["x-request-id"].startswith("req_")
