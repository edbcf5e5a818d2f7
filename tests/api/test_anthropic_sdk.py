"""The official anthropic SDK, pointed at this gateway's /anthropic base URL over real HTTP."""

from __future__ import annotations

import anthropic
import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def sdk(live_server, api_key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=api_key, base_url=f"{live_server.url}/anthropic", max_retries=0, timeout=10)


def test_the_sdk_lists_models_with_a_partner_key_and_follows_pages(live_server, partner_key_factory, model_map):
    client = sdk(live_server, partner_key_factory(scopes=["models"]).raw)
    first = client.models.list(limit=2)
    assert [model.id for model in first.data] == ["claude-opus-5-5", "claude-sonnet-5-5"]
    assert [model.id for model in client.models.list(limit=2)] == [
        "claude-opus-5-5",
        "claude-sonnet-5-5",
        "claude-haiku-5-5",
    ]
    assert client.models.retrieve("moderate").display_name == "Claude Sonnet 5.5"


def test_the_sdk_raises_its_own_error_classes(live_server, partner_key_factory, model_map):
    with pytest.raises(anthropic.AuthenticationError) as caught:
        sdk(live_server, "sk-ant-api03-not-a-gateway-key").models.list()
    assert caught.value.body["error"]["type"] == "authentication_error"
    assert caught.value.request_id and caught.value.request_id.startswith("req_")
    with pytest.raises(anthropic.PermissionDeniedError):
        sdk(live_server, partner_key_factory(scopes=["messages"]).raw).models.list()
    with pytest.raises(anthropic.NotFoundError):
        sdk(live_server, partner_key_factory().raw).models.retrieve("claude-nonexistent")
