from __future__ import annotations

import datetime as dt

import pytest

from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db

V2026 = {"HTTP_ANTHROPIC_VERSION": "2026-10-21"}


def test_models_lists_enabled_models_in_picker_order(client, partner_key_factory, model_map):
    from billing.models import PriceVersion

    PriceVersion.objects.create(
        model=model_map["claude-sonnet-5-5"], effective_from=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        input_micros=3_000_000, output_micros=15_000_000, cache_write_5m_micros=3_750_000,
        cache_write_1h_micros=6_000_000, cache_read_micros=300_000, batch_discount_percent=50,
        band_threshold_tokens=200_000, band_input_micros=6_000_000, band_output_micros=22_500_000,
        band_cache_write_5m_micros=7_500_000, band_cache_write_1h_micros=12_000_000, band_cache_read_micros=600_000,
    )  # fmt: skip
    response = client.get("/api/v1/models", **bearer(partner_key_factory(scopes=["models"])))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["has_more"], body["next"], body["previous"]) == (False, None, None)  # the one list shape
    data = body["data"]
    assert [row["id"] for row in data] == ["claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5"]
    assert data[0]["pricing"] is None  # not priced: calls to it are refused, so the partner is told
    sonnet = data[1]
    assert sonnet == {
        "id": "claude-sonnet-5-5",
        "display_name": "Claude Sonnet 5.5",
        "family": "sonnet",
        "context_window": 200_000,
        "max_output_tokens": 64_000,
        "aliases": ["moderate"],
        "retires_on": None,
        "pricing": {
            "currency": "USD",
            "unit": "micro-dollars per million tokens",
            "input_per_mtok_micros": 3_000_000,
            "output_per_mtok_micros": 15_000_000,
            "cache_write_5m_per_mtok_micros": 3_750_000,
            "cache_write_1h_per_mtok_micros": 6_000_000,
            "cache_read_per_mtok_micros": 300_000,
            "batch_discount_percent": 50,
            "long_context": {
                "above_input_tokens": 200_000,
                "input_per_mtok_micros": 6_000_000,
                "output_per_mtok_micros": 22_500_000,
                "cache_write_5m_per_mtok_micros": 7_500_000,
                "cache_write_1h_per_mtok_micros": 12_000_000,
                "cache_read_per_mtok_micros": 600_000,
            },
            "effective_from": "2026-01-01T00:00:00Z",
        },
    }


def test_models_needs_the_models_scope(client, partner_key_factory, model_map):
    response = client.get("/api/v1/models", **bearer(partner_key_factory(scopes=["messages"])))
    assert response.status_code == 403 and "'models'" in response.json()["error"]["message"]


def test_anthropic_models_list_has_anthropics_page_shape(client, partner_key_factory, model_map):
    key = partner_key_factory(scopes=["models"])
    body = client.get("/anthropic/v1/models?limit=2", HTTP_X_API_KEY=key.raw, **V2026).json()
    assert [row["id"] for row in body["data"]] == ["claude-opus-5-5", "claude-sonnet-5-5"]
    assert body["has_more"] is True and body["first_id"] == "claude-opus-5-5" and body["last_id"] == "claude-sonnet-5-5"
    assert set(body["data"][0]) == {
        "type", "id", "display_name", "created_at", "max_input_tokens", "max_tokens", "lifecycle", "deprecated_at",
        "retires_at",
    }  # fmt: skip
    assert body["data"][0]["type"] == "model" and body["data"][0]["created_at"].endswith("Z")
    rest = client.get("/anthropic/v1/models?limit=2&after_id=claude-sonnet-5-5", HTTP_X_API_KEY=key.raw, **V2026).json()
    assert [row["id"] for row in rest["data"]] == ["claude-haiku-5-5"] and rest["has_more"] is False


def test_anthropic_models_list_refuses_a_bad_limit_in_anthropics_shape(client, partner_key_factory, model_map):
    response = client.get("/anthropic/v1/models?limit=zero", HTTP_X_API_KEY=partner_key_factory().raw, **V2026)
    assert response.status_code == 400
    assert response.json()["type"] == "error" and "limit" in response.json()["error"]["message"]


def test_anthropic_model_lookup_accepts_ids_and_aliases_and_404s_otherwise(client, partner_key_factory, model_map):
    key = partner_key_factory()
    found = client.get("/anthropic/v1/models/moderate", HTTP_X_API_KEY=key.raw, **V2026)
    assert found.json()["id"] == "claude-sonnet-5-5"
    missing = client.get("/anthropic/v1/models/claude-mythos-5-2", HTTP_X_API_KEY=key.raw, **V2026)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
