"""A model map that protects itself: disabling or deleting a model names what depends on it and asks,
a disabled model is refused as disabled (400) with alternatives, fallbacks offer only sensible models."""

from __future__ import annotations

import pytest

from routing import modelmap, rulesets
from routing.errors import ModelDisabled
from routing.models import Model, RoutingRule


@pytest.fixture
def admin_client(client, user_factory):
    client.force_login(user_factory(is_staff=True, is_superuser=True))
    return client


def _model_post(model: Model, **changes) -> dict:
    data = {
        "model_id": model.model_id, "display_name": model.display_name, "family": model.family,
        "context_window": model.context_window, "max_output_tokens": model.max_output_tokens,
        "fallback": model.fallback_id or "", "sort_order": model.sort_order,
    }  # fmt: skip
    if model.enabled:
        data["enabled"] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_disabling_a_model_in_use_lists_its_dependents_and_asks_first(admin_client, rule_factory, published_set):
    haiku = Model.objects.get(model_id="claude-haiku-5-5")
    rule_factory(name="Greetings", target="simple")
    asked = admin_client.post(f"/admin/routing/model/{haiku.pk}/change/", _model_post(haiku, enabled=None))
    body = asked.content.decode()
    assert asked.status_code == 200 and "Still in use" in body
    assert "aliases simple" in body and "“Greetings” (published set)" in body
    haiku.refresh_from_db()
    assert haiku.enabled
    confirmed = admin_client.post(f"/admin/routing/model/{haiku.pk}/change/",
                                  _model_post(haiku, enabled=None, confirm_disable="on"))  # fmt: skip
    assert confirmed.status_code == 302
    haiku.refresh_from_db()
    assert not haiku.enabled


def test_deleting_a_model_shows_what_points_at_it(admin_client, rule_factory, published_set):
    opus = Model.objects.get(model_id="claude-opus-5-5")
    draft = rulesets.create_draft()
    RoutingRule.objects.create(rule_set=draft, name="Hard ones", target="claude-opus-5-5")
    page = admin_client.get(f"/admin/routing/model/{opus.pk}/delete/").content.decode()
    assert 'id="model-dependents"' in page and "“Hard ones” (draft set)" in page


def test_the_fallback_choices_leave_out_the_model_itself_and_disabled_ones(admin_client, model_map):
    sonnet = Model.objects.get(model_id="claude-sonnet-5-5")
    Model.objects.filter(model_id="claude-haiku-5-5").update(enabled=False)
    form = admin_client.get(f"/admin/routing/model/{sonnet.pk}/change/").context["adminform"].form
    offered = set(form.fields["fallback"].queryset.values_list("model_id", flat=True))
    assert "claude-sonnet-5-5" not in offered and "claude-haiku-5-5" not in offered
    assert "claude-opus-5-5" in offered


def test_a_disabled_model_is_refused_as_disabled_with_alternatives(model_map):
    Model.objects.filter(model_id="claude-opus-5-5").update(enabled=False)
    modelmap.invalidate_local()
    with pytest.raises(ModelDisabled) as caught:
        modelmap.resolve_model("complex")
    assert caught.value.alternatives and "claude-opus-5-5" not in caught.value.alternatives
    assert "is disabled; use" in str(caught.value)


def test_the_api_answers_400_disabled_naming_the_alternatives():
    from claudeapp.api.errors import describe

    info = describe(ModelDisabled("complex", "claude-opus-5-5", ("claude-sonnet-5-5",)))
    assert (info.status, info.type) == (400, "invalid_request_error")
    assert "'complex' is disabled on this gateway; use claude-sonnet-5-5 instead." in info.message
