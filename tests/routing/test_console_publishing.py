"""Safe publishing in the admin: only drafts change, publishing shows the diff and the replay and asks,
rollback is one click, names say what a set is, targets come from the model map."""

from __future__ import annotations

from io import StringIO

import pytest

from routing import rulesets, services
from routing.models import RoutingRule, RuleSet


@pytest.fixture
def admin_client(client, user_factory):
    client.force_login(user_factory(is_staff=True, is_superuser=True))
    return client


def _inline_post(rule_set, rule, **changes):
    data = {
        "name": rule_set.name, "note": rule_set.note,
        "rules-TOTAL_FORMS": "1", "rules-INITIAL_FORMS": "1", "rules-MIN_NUM_FORMS": "0", "rules-MAX_NUM_FORMS": "1000",
        "rules-0-id": str(rule.pk), "rules-0-rule_set": str(rule_set.pk), "rules-0-priority": str(rule.priority),
        "rules-0-name": rule.name, "rules-0-enabled": "on", "rules-0-requested_model": rule.requested_model,
        "rules-0-message_regex": rule.message_regex, "rules-0-target": rule.target, "rules-0-mode": rule.mode,
    }  # fmt: skip
    data.update(changes)
    return data


def test_a_published_set_and_its_rules_are_read_only(admin_client, rule_factory, published_set):
    rule = rule_factory(name="Greetings", target="simple", priority=20)
    page = admin_client.get(f"/admin/routing/ruleset/{published_set.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert b"read-only" in page.content and b"rules-0-priority" not in page.content
    admin_client.post(f"/admin/routing/ruleset/{published_set.pk}/change/", _inline_post(published_set, rule,
                      **{"rules-0-target": "complex"}))  # fmt: skip
    rule.refresh_from_db()
    assert rule.target == "simple"
    assert admin_client.post(f"/admin/routing/routingrule/{rule.pk}/change/", {"target": "complex"}).status_code == 403
    assert admin_client.post(f"/admin/routing/routingrule/{rule.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.post(f"/admin/routing/ruleset/{published_set.pk}/delete/", {"post": "yes"}).status_code == 403


def test_the_rules_list_edits_priorities_of_draft_rules_only(admin_client, rule_factory, published_set):
    live = rule_factory(name="Live rule", target="simple", priority=20)
    draft = rulesets.create_draft()
    copy = draft.rules.get()
    data = {
        "form-TOTAL_FORMS": "2", "form-INITIAL_FORMS": "2", "form-MIN_NUM_FORMS": "0", "form-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }  # fmt: skip
    for i, rule in enumerate(RoutingRule.objects.order_by("rule_set", "priority", "id")):
        data |= {f"form-{i}-id": str(rule.pk), f"form-{i}-priority": "5", f"form-{i}-enabled": "on"}
    admin_client.post("/admin/routing/routingrule/", data)
    live.refresh_from_db()
    copy.refresh_from_db()
    assert (live.priority, copy.priority) == (20, 5)


def test_the_add_rule_form_offers_the_draft_only_and_targets_from_the_model_map(admin_client, published_set):
    draft = rulesets.create_draft()
    page = admin_client.get("/admin/routing/routingrule/add/")
    choices = page.context["adminform"].form.fields["rule_set"].queryset
    assert list(choices) == [draft]
    target_choices = str(page.context["adminform"].form["target"])
    assert '<option value="simple">' in target_choices and '<option value="claude-opus-5-5">' in target_choices
    refused = admin_client.post("/admin/routing/routingrule/add/", {
        "rule_set": published_set.pk, "name": "Sneaky", "priority": 1, "enabled": "on", "target": "complex",
    })  # fmt: skip
    assert refused.status_code == 200 and not RoutingRule.objects.filter(name="Sneaky").exists()
    admin_client.post("/admin/routing/routingrule/add/", {
        "rule_set": draft.pk, "name": "Fine", "priority": 1, "enabled": "on", "target": "complex",
    })  # fmt: skip
    assert RoutingRule.objects.get(name="Fine").rule_set == draft


def test_the_draft_page_has_try_replay_and_publish_and_the_regex_field(admin_client, rule_factory, published_set):
    rule_factory(name="Greetings", target="simple", message_regex="^hi")
    draft = rulesets.create_draft()
    page = admin_client.get(f"/admin/routing/ruleset/{draft.pk}/change/")
    for tool in (b'id="tool-try"', b'id="tool-replay"', b'id="tool-publish"', b"rules-0-message_regex"):
        assert tool in page.content


def test_replay_offers_publish_only_after_it_ran(admin_client, published_set):
    draft = rulesets.create_draft()
    before = admin_client.get(f"/admin/routing/ruleset/{draft.pk}/replay/")
    assert b"run-replay" in before.content and b"publish-link" not in before.content
    after = admin_client.get(f"/admin/routing/ruleset/{draft.pk}/replay/", {"limit": 50})
    assert b"publish-link" in after.content


def test_publish_shows_the_diff_and_cost_change_and_needs_confirmation(
    admin_client, rule_factory, published_set, make_request
):
    from billing import prices
    from billing import seed as billing_seed

    billing_seed.run(stdout=StringIO())  # list prices, so the replay can put a cost on each mix
    prices._cache.clear()
    rule_factory(name="Greetings", target="simple", priority=20)
    for text in ["short one", "x" * 8000]:
        services.route(make_request(text))
    draft = rulesets.create_draft()
    RoutingRule.objects.create(rule_set=draft, name="Long -> complex", min_input_tokens=1000, target="complex")
    draft.rules.filter(name="Greetings").update(target="moderate")
    page = admin_client.get(f"/admin/routing/ruleset/{draft.pk}/publish/", {"limit": 10})
    changes = {c.name: c for c in page.context["changes"]}
    assert changes["Long -> complex"].change == "added"
    assert ("target", "simple", "moderate") in changes["Greetings"].fields
    assert b'id="cost-change"' in page.content and b"Cost change: +$" in page.content
    unconfirmed = admin_client.post(f"/admin/routing/ruleset/{draft.pk}/publish/")
    assert unconfirmed.status_code == 200
    draft.refresh_from_db()
    assert draft.status == RuleSet.Status.DRAFT
    admin_client.post(f"/admin/routing/ruleset/{draft.pk}/publish/", {"confirm": "on"})
    draft.refresh_from_db()
    assert draft.status == RuleSet.Status.PUBLISHED
    assert draft.name.startswith("Rules v") and "Draft" not in draft.name


def test_rollback_puts_the_previous_set_back_in_one_click(admin_client, published_set, make_request):
    published_set.published_at = published_set.created_at
    published_set.save()
    draft = rulesets.create_draft()
    RoutingRule.objects.create(rule_set=draft, name="All complex", target="complex")
    rulesets.publish(rule_set_id=draft.pk)
    assert services.route(make_request(), store=False).model_id == "claude-opus-5-5"
    listing = admin_client.get("/admin/routing/ruleset/")
    assert b"tool-rollback" in listing.content and b"Roll back to" in listing.content
    admin_client.post("/admin/routing/ruleset/rollback/")
    published_set.refresh_from_db()
    draft.refresh_from_db()
    assert (published_set.status, draft.status) == (RuleSet.Status.PUBLISHED, RuleSet.Status.ARCHIVED)
    assert services.route(make_request(), store=False).model_id == "claude-sonnet-5-5"


def test_a_draft_is_named_for_what_it_is(published_set):
    draft = rulesets.create_draft()
    assert draft.name == "Draft: changes to Live" and "Live" in draft.note
