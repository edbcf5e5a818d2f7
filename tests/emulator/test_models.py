from __future__ import annotations

import anthropic
import pytest

from emulator.models import CATALOGUE


def test_models_list_pages_through_every_model_newest_first(emulator_reset, anthropic_client):
    first = anthropic_client.models.list(limit=5)
    assert len(first.data) == 5 and first.has_more
    assert first.first_id == "claude-fable-5-2" and first.last_id == first.data[-1].id
    ids = [m.id for m in anthropic_client.models.list(limit=7)]  # auto-pagination follows after_id
    assert ids == [m.id for m in CATALOGUE]
    assert "claude-sonnet-4-20250514" not in ids


def test_models_list_supports_before_id(emulator_reset, anthropic_client):
    page = anthropic_client.models.list(limit=2, before_id="claude-opus-5-5")
    assert [m.id for m in page.data] == ["claude-sonnet-5-5", "claude-fable-5-1"]
    assert page.has_more


def test_model_retrieve_returns_model_info(emulator_reset, anthropic_client):
    model = anthropic_client.models.retrieve("claude-sonnet-4-5")
    assert model.type == "model" and model.display_name == "Claude Sonnet 4.5"
    assert model.lifecycle == "deprecated" and model.retires_at is not None
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client.models.retrieve("claude-opus-4-20250514")


def test_configured_retired_models_disappear_from_the_list(emulator_reset, anthropic_client):
    emulator_reset.set_config(retired_models=["claude-mythos-preview"])
    assert "claude-mythos-preview" not in [m.id for m in anthropic_client.models.list(limit=100)]
