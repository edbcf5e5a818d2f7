"""The operator's console in Chromium, one flow per test: an operator signs in, does the task in the admin and
sees the result. Each flow keeps screenshots in test-artifacts/ (docs/operations.md's tour uses a few), and
none may trip the Content-Security-Policy."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.shots import shot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


PAST_TRAFFIC = [
    ("Write a haiku about tide pools", "moderate", "claude-sonnet-5-5"),
    ("Thanks!", "simple", "claude-haiku-5-5"),
    ("Prove that there are infinitely many primes", "complex", "claude-opus-5-5"),
]


def test_an_operator_edits_a_draft_replays_it_publishes_it_and_rolls_back(console, operator, artifacts):
    from routing.models import RoutingDecision, RoutingRule, RuleSet

    for text, label, model in PAST_TRAFFIC:
        RoutingDecision.objects.create(  # past traffic for the replay, with stored classifier labels
            principal_kind="user", principal_id=operator.pk, requested_model="auto", input_tokens=12,
            message_excerpt=text, classifier_label=label, model_id=model, mode="sync", reason="classified",
        )  # fmt: skip
    page = console
    page.goto("/admin/routing/ruleset/")
    page.click("#tool-copy")  # "New draft from the live rules"
    page.wait_for_selector("#tool-publish")
    draft = RuleSet.objects.get(status="draft")
    assert page.locator("#tool-try").is_visible() and page.locator("#tool-replay").is_visible()
    # A new rule in the inline editor: a regex, and a target picked from the model map.
    page.click(".add-row a")
    row = page.locator("tr.dynamic-rules").last
    row.locator("input[name$='-name']").fill("Haiku for haiku")
    row.locator("input[name$='-priority']").fill("5")
    row.locator("input[name$='-message_regex']").fill("(?i)haiku")
    row.locator("select[name$='-target']").select_option("simple")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    assert RoutingRule.objects.filter(rule_set=draft, name="Haiku for haiku", target="simple").exists()
    shot(page, artifacts, "draft")

    page.click("#tool-try")  # a prompt through the draft, nothing stored
    page.fill("#id_prompt", "Write me a haiku about autumn")
    page.click("input[type=submit][value='Route it']")
    page.wait_for_selector("#decision")
    assert "claude-haiku-5-5" in page.inner_text("#decision") and "Haiku for haiku" in page.inner_text("#decision")
    assert RoutingDecision.objects.count() == len(PAST_TRAFFIC)
    page.goto(f"/admin/routing/ruleset/{draft.pk}/change/")
    page.click("#tool-replay")
    assert page.locator("#publish-link").count() == 0  # not before the replay ran
    page.click("#run-replay")
    page.wait_for_selector("#mix")
    page.click("#publish-link")
    page.wait_for_selector("#rule-diff")
    assert "Haiku for haiku" in page.inner_text("#rule-diff") and "added" in page.inner_text("#rule-diff")
    assert "1 of 3 decisions would go elsewhere" in page.inner_text("#cost-change")
    assert page.locator("#cost-change").is_visible()
    shot(page, artifacts, "publish-confirm")
    page.click("#confirm-publish")  # without ticking the box: asked again, nothing published
    assert RuleSet.objects.get(pk=draft.pk).status == "draft"
    page.check("#id_confirm")
    page.click("#confirm-publish")
    page.wait_for_selector(".messagelist .success")
    published = RuleSet.objects.get(pk=draft.pk)
    assert published.status == "published" and published.name.startswith("Rules v")

    page.goto(f"/admin/routing/ruleset/{published.pk}/change/")
    assert page.locator("#read-only-note").is_visible() and page.locator("input[name=_save]").count() == 0
    page.click("#tool-rollback")
    page.wait_for_selector(".messagelist .success")
    assert RuleSet.objects.get(pk=published.pk).status == "archived"
    shot(page, artifacts, "rule-sets")


def test_an_operator_gives_a_user_a_budget_in_dollars_and_sees_it_on_their_page(console, artifacts):
    from billing import ledger, prices
    from billing.costs import Usage
    from billing.models import Budget
    from claudeapp.accounts.models import User
    from claudeapp.accounts.principals import Principal

    alice = User.objects.create(username="alice")
    ledger.record(
        principal=Principal.for_user(alice), kind="message", subject="s-1", model_id="claude-haiku-5-5",
        usage=Usage(input_tokens=2000, output_tokens=1000), price=prices.current_price(model_id="claude-haiku-5-5"),
        event_key="e2e-spend-1",
    )  # fmt: skip
    page = console
    page.goto("/admin/billing/budget/add/")
    page.select_option("#id_scope", "user")
    page.click("#id_user + .select2 .select2-selection")  # the autocomplete picker, not an id
    page.fill(".select2-search__field", "ali")
    page.click(".select2-results__option:has-text('alice')")
    page.select_option("#id_period", "day")
    page.fill("#id_limit_dollars", "0.05")
    shot(page, artifacts, "budget-form")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    budget = Budget.objects.get()
    assert (budget.scope_id, budget.limit_micros) == (alice.pk, 50_000)
    assert budget.spent_micros > 0  # started from what alice had already spent today
    page.goto(f"/admin/accounts/user/{alice.pk}/change/")
    overview = page.inner_text("#principal-overview")
    assert "left of $0.0500" in overview and "No rate limit applies" in overview
    shot(page, artifacts, "user-overview")


def test_every_call_and_refusal_shows_in_the_request_log(console, seeded_web, artifacts):
    from billing.models import Budget
    from claudeapp.accounts.models import User
    from claudeapp.api import keys

    alice = User.objects.create(username="alice")
    key, raw = keys.create_key(owner=alice, name="nightly-reports", scopes=["messages"], expires_at=None)
    body = {"model": "claude-haiku-5-5", "max_tokens": 16, "messages": [{"role": "user", "content": "Hello there"}]}
    headers = {"authorization": f"Bearer {raw}"}
    with httpx.Client(base_url=seeded_web.url, timeout=30) as http:
        assert http.post("/api/v1/messages", json=body, headers=headers).status_code == 200
        Budget.objects.create(scope="partner_key", scope_id=key.pk, period="day", limit_micros=1)
        refused = http.post("/api/v1/messages", json=body, headers=headers)
    assert refused.status_code == 402
    page = console
    deadline = time.monotonic() + 10  # the web process writes its buffered rows every half second
    while True:
        page.goto("/admin/requestlog/requestlog/")
        if page.locator("#result_list tbody tr").count() >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    rows = page.inner_text("#result_list")
    assert rows.count("nightly-reports") == 2 and "Refused 402" in rows and "Complete 200" in rows
    page.click("#toggle-nav-sidebar")  # room for every column in the screenshot
    page.set_viewport_size({"width": 1920, "height": 520})
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, artifacts, "request-log")
    page.click("#changelist-filter a:has-text('Refused')")
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == 1


def test_disabling_a_model_in_use_names_what_depends_on_it_and_asks(console, artifacts):
    from routing.models import Model

    haiku = Model.objects.get(model_id="claude-haiku-5-5")
    Model.objects.filter(model_id="claude-opus-5-5").update(enabled=False)
    page = console
    page.goto(f"/admin/routing/model/{haiku.pk}/change/")
    fallback_choices = page.locator("#id_fallback option").all_inner_texts()
    assert "claude-haiku-5-5" not in fallback_choices and "claude-opus-5-5" not in fallback_choices
    assert "claude-sonnet-5-5" in fallback_choices
    page.uncheck("#id_enabled")
    page.click("input[name=_save]")
    page.wait_for_selector(".errornote")
    assert "Still in use" in page.inner_text("#content") and "aliases simple" in page.inner_text("#content")
    shot(page, artifacts, "model-dependents")
    assert Model.objects.get(pk=haiku.pk).enabled
    page.uncheck("#id_enabled")
    page.check("#id_confirm_disable")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    assert not Model.objects.get(pk=haiku.pk).enabled


def test_the_dead_letter_queue_warns_before_requeueing_into_an_open_circuit(console, artifacts):
    from claudeapp.accounts.models import User
    from claudeapp.claude import breaker
    from claudeapp.jobs.models import Job

    model = "claude-haiku-5-5"
    alice = User.objects.create(username="alice")
    job = Job.objects.create(
        principal_kind="user", principal_id=alice.pk, user=alice, status="dead", attempts=5, model_requested=model,
        payload={"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
        last_error_type="overloaded_error", last_error_status=529, last_error_message="Overloaded",
    )  # fmt: skip
    failed = Job.objects.create(  # a 400 is never retried: it fails at once, and is listed beside the dead
        principal_kind="user", principal_id=alice.pk, user=alice, status="failed", attempts=1, model_requested=model,
        payload={"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
        last_error_type="invalid_request_error", last_error_status=400, last_error_message="max_tokens: too large",
    )  # fmt: skip
    brk = breaker.Breaker()
    while (ticket := brk.allow(model)).allowed:
        brk.record_failure(ticket)
    try:
        page = console
        page.goto("/admin/breakers/")
        assert "(unix)" not in page.inner_text("#breakers") and " ago)" in page.inner_text("#breakers")
        shot(page, artifacts, "breakers")
        page.goto("/admin/jobs/deadjob/")
        assert "open" in page.inner_text(".field-circuit")
        listed = page.inner_text("#result_list")
        assert "400 invalid_request_error: max_tokens: too large" in listed and listed.count("alice") == 2
        actions = page.locator("select[name=action] option").all_inner_texts()
        assert "Requeue: run again with a fresh set of attempts" in actions
        assert not any(a.startswith("Delete selected") for a in actions)
        page.check(f"input[name=_selected_action][value='{job.pk}']")
        page.select_option("select[name=action]", "requeue_jobs")
        page.click("button[name=index]")
        page.wait_for_selector("#open-circuit-warning")
        shot(page, artifacts, "requeue-warning")
        assert Job.objects.get(pk=job.pk).status == "dead"
        page.goto(f"/admin/jobs/deadjob/{job.pk}/change/")
        assert page.locator("#tool-requeue").is_visible() and page.locator("#circuit-warning").is_visible()
        page.click("#tool-discard")
        page.wait_for_selector(".messagelist .success")
        assert not Job.objects.filter(pk=job.pk).exists()
        page.goto(f"/admin/jobs/job/{failed.pk}/change/")
        assert "max_tokens: too large" in page.inner_text("#job-reason")
        page.click("#tool-requeue")  # its model's circuit is still open: asked first, here too
        page.wait_for_selector("#open-circuit-warning")
        assert Job.objects.get(pk=failed.pk).status == "failed"
        page.click("#confirm-requeue")
        page.wait_for_selector(".messagelist .success")
        assert Job.objects.get(pk=failed.pk).status == "queued"
    finally:
        breaker.reset(model)
