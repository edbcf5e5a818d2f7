from __future__ import annotations

import pytest

from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db


def test_models_lists_enabled_models_in_picker_order(client, partner_key_factory, model_map):
    response = client.get("/api/v1/models", **bearer(partner_key_factory(scopes=["models"])))
    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert [row["id"] for row in data] == ["claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5"]
    sonnet = data[1]
    assert sonnet == {
        "id": "claude-sonnet-5-5",
        "display_name": "Claude Sonnet 5.5",
        "family": "sonnet",
        "context_window": 200_000,
        "max_output_tokens": 64_000,
        "aliases": ["moderate"],
        "retires_on": None,
    }


def test_models_needs_the_models_scope(client, partner_key_factory, model_map):
    response = client.get("/api/v1/models", **bearer(partner_key_factory(scopes=["messages"])))
    assert response.status_code == 403 and "'models'" in response.json()["error"]["message"]


def test_anthropic_models_list_has_anthropics_page_shape(client, partner_key_factory, model_map):
    key = partner_key_factory(scopes=["models"])
    body = client.get("/anthropic/v1/models?limit=2", HTTP_X_API_KEY=key.raw).json()
    assert [row["id"] for row in body["data"]] == ["claude-opus-5-5", "claude-sonnet-5-5"]
    assert body["has_more"] is True and body["first_id"] == "claude-opus-5-5" and body["last_id"] == "claude-sonnet-5-5"
    assert set(body["data"][0]) == {"type", "id", "display_name", "created_at"}
    assert body["data"][0]["type"] == "model" and body["data"][0]["created_at"].endswith("Z")
    rest = client.get("/anthropic/v1/models?limit=2&after_id=claude-sonnet-5-5", HTTP_X_API_KEY=key.raw).json()
    assert [row["id"] for row in rest["data"]] == ["claude-haiku-5-5"] and rest["has_more"] is False


def test_anthropic_models_list_refuses_a_bad_limit_in_anthropics_shape(client, partner_key_factory, model_map):
    response = client.get("/anthropic/v1/models?limit=zero", HTTP_X_API_KEY=partner_key_factory().raw)
    assert response.status_code == 400
    assert response.json()["type"] == "error" and "limit" in response.json()["error"]["message"]


def test_anthropic_model_lookup_accepts_ids_and_aliases_and_404s_otherwise(client, partner_key_factory, model_map):
    key = partner_key_factory()
    assert client.get("/anthropic/v1/models/moderate", HTTP_X_API_KEY=key.raw).json()["id"] == "claude-sonnet-5-5"
    missing = client.get("/anthropic/v1/models/claude-mythos-5-2", HTTP_X_API_KEY=key.raw)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
