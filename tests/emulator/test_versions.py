from __future__ import annotations

import anthropic
import pytest

from tests.emulator.conftest import params


def test_sdk_1x_api_version_accepts_sampling_parameters(emulator_reset, anthropic_client):
    old = anthropic_client.with_options(default_headers={"anthropic-version": "2023-06-01"})
    message = old.messages.create(**params("hello"), extra_body={"temperature": 0.2, "top_p": 0.9, "top_k": 5})
    assert message.content


def test_sdk_1x_api_version_still_validates_temperature_range(emulator_reset, anthropic_client):
    old = anthropic_client.with_options(default_headers={"anthropic-version": "2023-06-01"})
    with pytest.raises(anthropic.BadRequestError):
        old.messages.create(**params("hello"), extra_body={"temperature": 1.5})


@pytest.mark.parametrize("field", ["temperature", "top_p", "top_k"])
def test_2026_api_version_refuses_sampling_parameters(raw, field):
    response = raw.post("/v1/messages", json={**params("hello"), field: 1})
    assert response.status_code == 400
    assert field in response.json()["error"]["message"]


def test_2026_api_version_refuses_documents_in_assistant_turns(raw):
    document = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}}
    body = params("x")
    body["messages"] += [{"role": "assistant", "content": [document]}, {"role": "user", "content": "ok"}]
    assert raw.post("/v1/messages", json=body).status_code == 400
    old = raw.post("/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"})
    assert old.status_code == 200


def test_missing_or_unknown_api_version_is_a_bad_request(raw):
    request = raw.build_request("POST", "/v1/messages", json=params("x"))
    del request.headers["anthropic-version"]
    missing = raw.send(request)
    assert missing.status_code == 400
    assert missing.json()["error"]["message"] == "anthropic-version: header is required"
    unknown = raw.post("/v1/messages", json=params("x"), headers={"anthropic-version": "2024-01-01"})
    assert unknown.status_code == 400
    assert "anthropic-version" in unknown.json()["error"]["message"]


def test_the_sdk_sends_2026_10_21_and_authenticates_with_bearer(emulator_reset, anthropic_client):
    response = anthropic_client.messages.with_raw_response.create(**params("hello"))
    assert response.http_request.headers["anthropic-version"] == "2026-10-21"
    assert response.http_request.headers["authorization"] == "Bearer test-key"
    assert response.status_code == 200
