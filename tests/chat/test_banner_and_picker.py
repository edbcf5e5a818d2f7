"""The budget banner's thresholds (80% warns, 95% is critical, per covering budget) and the model
picker's aliases, as the chat page renders them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from billing.models import Budget
from claudeapp.accounts.principals import Principal
from claudeapp.chat import budget_banner, picker
from routing import modelmap
from routing.models import Model, ModelAlias

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(user_factory):
    return user_factory(username="alice")


def _budget(scope_id, spent, *, limit=1_000_000, scope="user", period="month", **fields):
    return Budget.objects.create(
        scope=scope, scope_id=scope_id, period=period, limit_micros=limit, spent_micros=spent, **fields
    )


@pytest.mark.parametrize(
    ("spent", "level", "words"),
    [
        (0, None, None),
        (799_999, None, None),  # 79.99...%: floored, not yet 80
        (800_000, "warning", "80% of your monthly budget is spent ($0.8000 of $1.00)"),
        (949_999, "warning", "94% of your monthly budget"),
        (950_000, "critical", "95% of your monthly budget"),
        (1_000_000, "critical", "Your monthly budget of $1.00 is used up until"),
    ],
)
def test_the_banner_warns_at_80_and_turns_critical_at_95(alice, spent, level, words):
    _budget(alice.pk, spent)
    banner = budget_banner.banner_for(Principal.for_user(alice))
    assert (banner.level if banner else None) == level
    if words:
        assert words in banner.message


def test_the_most_spent_covering_budget_speaks_and_others_budgets_do_not_count(alice, user_factory):
    _budget(alice.pk, 810_000)
    _budget(None, 970_000, scope="global", limit=1_000_000, period="day")
    _budget(user_factory(username="bob").pk, 1_000_000)  # someone else's, used up
    banner = budget_banner.banner_for(Principal.for_user(alice))
    assert banner.level == "critical" and "the organisation's daily budget" in banner.message


def test_a_budget_from_a_past_period_counts_as_unspent(alice):
    _budget(alice.pk, 990_000, period="day", period_start=timezone.now() - dt.timedelta(days=3))
    assert budget_banner.banner_for(Principal.for_user(alice)) is None


def test_the_chat_page_and_the_banner_endpoint_render_it(client, alice):
    client.force_login(alice)
    assert 'id="budget-banner"' in client.get("/").content.decode()  # hidden, for the page to fill later
    assert "budget-warning" not in client.get("/usage/banner").content.decode()
    _budget(alice.pk, 900_000)
    page = client.get("/").content.decode()
    assert "budget-warning" in page and "90% of your monthly budget is spent" in page
    assert "budget-warning" in client.get("/usage/banner").content.decode()


@pytest.fixture
def model_map(transactional_db):
    from io import StringIO

    from django.core.management import call_command

    call_command("seed", stdout=StringIO())
    modelmap.invalidate_local()
    yield
    modelmap.invalidate_local()


@pytest.mark.django_db(transaction=True)
def test_the_picker_lists_aliases_of_enabled_models_with_what_they_stand_for(model_map, client, alice):
    haiku = Model.objects.get(model_id="claude-haiku-5-5")
    ModelAlias.objects.update_or_create(name="quick", defaults={"model": haiku})
    opus = Model.objects.get(model_id="claude-opus-5-5")
    ModelAlias.objects.update_or_create(name="gone", defaults={"model": opus})
    Model.objects.filter(pk=opus.pk).update(enabled=False)
    modelmap.changed()
    modelmap.invalidate_local()
    choices = picker.model_picker()
    labels = {c.value: c.label for c in choices.aliases}
    assert labels["quick"] == f"quick → {haiku.display_name}"
    assert "gone" not in labels  # its model is disabled
    assert "claude-opus-5-5" not in [c.value for c in choices.models]
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert '<optgroup label="Aliases">' in page and f"quick → {haiku.display_name}" in page
