"""The console's forms that had no browser test of their own, in Chromium: a rate-limit policy's scope picked by
name, the model map's delete page, and the request log's settings. Each as an operator does it, with no
Content-Security-Policy violation (the `console` fixture checks)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.e2e.shots import shot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_rate_limit_policys_key_is_picked_by_name_saved_and_listed_by_name(console, artifacts):
    from billing.models import RateLimitPolicy
    from claudeapp.accounts.models import User
    from claudeapp.api import keys

    alice = User.objects.create(username="alice")
    key, _ = keys.create_key(owner=alice, name="nightly-reports", scopes=["messages"], expires_at=None)
    keys.create_key(owner=alice, name="daytime-chat", scopes=["messages"], expires_at=None)
    page = console
    page.goto("/admin/billing/ratelimitpolicy/add/")
    page.select_option("#id_scope", "partner_key")
    page.click("#id_partner_key + .select2 .select2-selection")  # the autocomplete picker, not an id
    page.fill(".select2-search__field", "nightly")
    # The search narrows by name to the one key (its masked secret beside it, never the id).
    expect(page.locator(".select2-results__option")).to_have_text([re.compile(r"^nightly-reports \(cgw_")])
    page.click(".select2-results__option:has-text('nightly-reports')")
    page.fill("#id_model_id", "claude-haiku-5-5")
    page.fill("#id_requests_per_minute", "5")
    shot(page, artifacts, "policy-form")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    policy = RateLimitPolicy.objects.get()
    assert (policy.scope, policy.scope_id, policy.model_id, policy.requests_per_minute) == (
        "partner_key", key.pk, "claude-haiku-5-5", 5,
    )  # fmt: skip
    who = page.inner_text("#result_list .field-who")
    assert "nightly-reports" in who and str(key.pk) not in who.replace(key.masked, "")
    assert page.locator(f"#result_list .field-who a[href='/admin/api/partnerkey/{key.pk}/change/']").count() == 1
    # The same scope twice is refused by name, not by a database error.
    page.goto("/admin/billing/ratelimitpolicy/add/")
    page.select_option("#id_scope", "partner_key")
    page.click("#id_partner_key + .select2 .select2-selection")
    page.fill(".select2-search__field", "nightly")
    page.click(".select2-results__option:has-text('nightly-reports')")
    page.fill("#id_model_id", "claude-haiku-5-5")
    page.click("input[name=_save]")
    page.wait_for_selector(".errornote")
    assert "There is one already for this scope" in page.inner_text("#content")
    assert RateLimitPolicy.objects.count() == 1


def test_deleting_a_model_lists_what_depends_on_it_and_asks_first(console, emulator, artifacts):
    from django.db import connection

    from routing.models import Model, ModelAlias, RoutingRule, RuleSet
    from tests.e2e.conftest import PatientWebServer
    from tests.fixtures.live_web import database_url, web_env

    retired = Model.objects.create(model_id="claude-retired-4", display_name="Claude Retired 4", family="other")
    Model.objects.filter(model_id="claude-haiku-5-5").update(fallback=retired)
    draft = RuleSet.objects.create(name="next week", status=RuleSet.Status.DRAFT)
    RoutingRule.objects.create(rule_set=draft, name="Old batch jobs", priority=5, target="claude-retired-4")
    alias = ModelAlias.objects.create(name="legacy", model=retired)
    # A web process of its own: the admin's log entry caches routing.Model's content type id in the process
    # that writes it, and each test's database flush gives content types new ids, so the package's shared
    # server would then fail test_console_tour's own admin change of a model.
    own = PatientWebServer(web_env(database=database_url(connection.settings_dict), emulator_url=emulator.url))
    try:
        _delete_after_asking(console, own.url, retired, alias, artifacts)
    finally:
        own.stop()
    assert not Model.objects.filter(pk=retired.pk).exists()
    assert Model.objects.get(model_id="claude-haiku-5-5").fallback_id is None
    assert RoutingRule.objects.filter(name="Old batch jobs").exists()  # skipped at routing time, not deleted


def _delete_after_asking(console, base: str, retired, alias, artifacts) -> None:
    from routing.models import Model

    page = console  # signed in: its session cookie is for 127.0.0.1, whatever the port
    page.goto(f"{base}/admin/routing/model/{retired.pk}/delete/")
    dependents = page.inner_text("#model-dependents")
    assert "aliases legacy" in dependents and "“Old batch jobs” (draft set)" in dependents
    assert "the fallback of claude-haiku-5-5" in dependents
    # An alias protects its model: nothing to confirm until it points elsewhere.
    assert page.locator("input[type=submit]").count() == 0 and "legacy" in page.inner_text("#content")
    shot(page, artifacts, "model-delete-protected")
    alias.delete()
    page.reload()
    dependents = page.inner_text("#model-dependents")
    assert "aliases" not in dependents and "Old batch jobs" in dependents and "claude-haiku-5-5" in dependents
    assert Model.objects.filter(pk=retired.pk).exists()  # the page asked; nothing is gone yet
    shot(page, artifacts, "model-delete")
    page.click("input[type=submit]")  # "Yes, I'm sure"
    page.wait_for_selector(".messagelist .success")


def test_an_operator_sets_the_request_logs_retention_and_turns_prompts_on(console, operator, artifacts):
    from claudeapp.requestlog import buffer, services
    from claudeapp.requestlog.models import RequestLog
    from claudeapp.requestlog.tasks import purge_request_log
    from routing.models import RoutingDecision

    now = timezone.now()
    for age in (3, 10):
        RequestLog.objects.create(created_at=now - dt.timedelta(days=age), principal_kind="user",
                                  principal_id=operator.pk, status="complete")  # fmt: skip
    page = console
    page.goto("/admin/")
    page.click("a:has-text('Request log settings')")
    page.wait_for_selector("#id_retention_days")  # the list goes straight to the one row
    assert page.input_value("#id_retention_days") == "30" and not page.is_checked("#id_store_prompts")
    assert "Off: no prompt text" in page.inner_text(".field-store_prompts")
    assert page.locator(".deletelink").count() == 0
    page.fill("#id_retention_days", "7")
    page.check("#id_store_prompts")
    shot(page, artifacts, "request-log-settings")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    row = services.get_settings()
    assert (row.retention_days, row.store_prompts) == (7, True)
    page.goto("/admin/requestlog/requestlogsettings/")
    assert page.input_value("#id_retention_days") == "7" and page.is_checked("#id_store_prompts")
    # What the settings do: the hourly purge keeps 7 days, and the next rows carry their prompt's excerpt.
    assert purge_request_log.apply().get() == 1
    assert list(RequestLog.objects.values_list("created_at", flat=True)) == [now - dt.timedelta(days=3)]
    decision = RoutingDecision.objects.create(
        principal_kind="user", principal_id=operator.pk, requested_model="auto", message_excerpt="tide pools",
        model_id="claude-haiku-5-5", mode="sync", reason="r",
    )  # fmt: skip
    buffer.forget_settings()  # as the flusher would within 10 s
    buffer.add({"status": "complete", "principal_kind": "user", "principal_id": operator.pk,
                "route_decision_id": decision.pk})  # fmt: skip
    buffer.flush()
    assert RequestLog.objects.get(route_decision_id=decision.pk).prompt_excerpt == "tide pools"
