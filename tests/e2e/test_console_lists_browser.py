"""The console's lists in Chromium: an operator signs in and reads the ledger (filters by principal, model,
surface and day with the selection's total, principals by name with links, a CSV of the selection with names
and dollars), the routing decisions (one line per decision, a prompt column, search that finds every match,
no Delete, a readable time taken) and a user's or a key's page (spend, budgets with what remains, limits)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest

from tests.e2e.shots import shot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _bill(principal, n: int, model_id: str):
    from billing import ledger, prices
    from billing.costs import Usage

    return ledger.record(
        principal=principal, kind="message", subject=f"s-{principal.kind}-{n}", model_id=model_id,
        usage=Usage(input_tokens=2000 * (n + 1), output_tokens=500), price=prices.current_price(model_id=model_id),
        event_key=f"e2e-ledger-{principal.kind}-{principal.id}-{n}",
    )  # fmt: skip


def _filter(page, title: str, choice: str) -> None:
    page.click(f"#changelist-filter details[data-filter-title='{title}'] a:text-is('{choice}')")
    page.wait_for_selector("#totals")


def test_the_ledger_filters_by_principal_model_surface_and_day_totals_them_and_exports_names_and_dollars(
    console, artifacts
):
    from billing import money
    from billing.models import LedgerEntry
    from claudeapp.accounts.models import User
    from claudeapp.accounts.principals import Principal
    from claudeapp.api import keys

    alice, bob = User.objects.create(username="alice"), User.objects.create(username="bob")
    key, _ = keys.create_key(owner=alice, name="nightly-reports", scopes=["messages"], expires_at=None)
    by_key = Principal(kind="partner_key", id=key.pk, user_id=alice.pk)
    key_entries = [_bill(by_key, n, "claude-sonnet-5-5") for n in range(2)]
    _bill(Principal.for_user(alice), 0, "claude-haiku-5-5")
    old = _bill(Principal.for_user(bob), 0, "claude-opus-5-5")
    LedgerEntry.objects.filter(pk=old.pk).update(created_at=old.created_at - dt.timedelta(days=1))
    page = console
    page.goto("/billing/dashboard/")  # the top principals by name, each a link to its page and its ledger
    assert page.locator(f".spend a[href='/admin/api/partnerkey/{key.pk}/change/']").is_visible()
    page.click(f".spend a.ledger-link[href$='principal=user:{bob.pk}']")
    page.wait_for_selector("#totals")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1 and "bob" in page.inner_text("#result_list")
    page.goto("/admin/billing/ledgerentry/")
    assert rows.count() == 4
    assert page.locator(f"#result_list a[href='/admin/accounts/user/{alice.pk}/change/']").inner_text() == "alice"
    key_links = page.locator(f"#result_list a[href='/admin/api/partnerkey/{key.pk}/change/']")
    assert key_links.count() == 2 and key_links.first.inner_text() == "key “nightly-reports” (alice)"

    _filter(page, "principal", "key “nightly-reports” (alice)")
    _filter(page, "when", "Today")
    key_cost = sum(e.cost_micros for e in key_entries)
    assert page.inner_text("[data-total=cost]") == money.usd(key_cost) and "over 2 rows" in page.inner_text("#totals")
    page.click("#toggle-nav-sidebar")  # room for every column in the screenshot
    page.set_viewport_size({"width": 1600, "height": 620})
    shot(page, artifacts, "ledger")
    with page.expect_download() as download:
        page.click("#ledger-csv")
    rows_csv = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert [r["principal_name"] for r in rows_csv] == ["key “nightly-reports” (alice)"] * 2
    assert [r["username"] for r in rows_csv] == ["alice", "alice"]
    assert sum(int(r["cost_micros"]) for r in rows_csv) == key_cost
    assert [r["cost_usd"] for r in rows_csv] == [f"{e.cost_micros / 1e6:.6f}" for e in key_entries]

    page.goto("/admin/billing/ledgerentry/")
    _filter(page, "model id", "claude-opus-5-5")
    assert "over 0 rows" not in page.inner_text("#totals") and rows.count() == 1  # all time: bob's entry
    _filter(page, "when", "Today")
    assert "over 0 rows" in page.inner_text("#totals")
    _filter(page, "when", "Yesterday")
    assert rows.count() == 1 and page.inner_text("[data-total=cost]") == money.usd(old.cost_micros)

    page.goto("/admin/billing/ledgerentry/")
    _filter(page, "surface", "Chat (signed-in users)")
    assert rows.count() == 2 and "nightly-reports" not in page.inner_text("#result_list")
    _filter(page, "surface", "Partner API keys")
    assert rows.count() == 2 and page.inner_text("#result_list").count("nightly-reports") == 2

    page.goto("/admin/billing/ledgerentry/")
    page.fill("#searchbar", "nightly")  # a key's name finds its spend
    page.press("#searchbar", "Enter")
    page.wait_for_selector("#totals")
    assert rows.count() == 2 and page.inner_text("[data-total=cost]") == money.usd(key_cost)


def test_the_decisions_list_reads_one_line_each_finds_every_match_and_has_no_delete(console, operator, artifacts):
    from claudeapp.accounts.models import User
    from routing.models import RoutingDecision

    fan = User.objects.create(username="tidewatcher")
    long_reason = "rule “Long prompts to Opus” matched: over 4,000 input tokens and the classifier said complex"

    def decide(who, prompt: str, reason: str = long_reason, rule: str = "", elapsed: float = 1.25) -> RoutingDecision:
        return RoutingDecision.objects.create(
            principal_kind="user", principal_id=who.pk, requested_model="auto", message_excerpt=prompt,
            model_id="claude-sonnet-5-5", mode="sync", reason=reason, rule_name=rule, elapsed_ms=elapsed,
        )  # fmt: skip

    matching = [decide(operator, f"Write a poem about tide pools, part {n}, " + "with waves " * 20) for n in range(3)]
    matching += [decide(operator, "Summarise this report", "rule “Tide helper” matched", "Tide helper")
                 for _ in range(2)]  # fmt: skip
    matching += [decide(fan, "What is the capital of France?") for _ in range(2)]  # found by the user's name
    for n in range(9):
        decide(operator, f"Unrelated question number {n} " + "and more words " * 20)
    slow = decide(operator, "Slow one", elapsed=4.790666999724635)

    page = console
    page.goto("/admin/routing/routingdecision/")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 17 and page.locator("#result_list th.column-prompt").is_visible()
    heights = {round(rows.nth(i).bounding_box()["height"]) for i in range(rows.count())}
    one_line = page.evaluate("parseFloat(getComputedStyle(document.querySelector('#result_list td')).lineHeight)")
    assert max(heights) < 2.5 * one_line, heights  # no reason or prompt wrapping a word per line
    assert page.locator(f"#result_list a[href='/admin/accounts/user/{fan.pk}/change/']").count() == 2
    page.fill("#searchbar", "tide")
    page.press("#searchbar", "Enter")
    page.wait_for_selector("#result_list")
    links = page.locator("#result_list th.field-created_at a").evaluate_all("a => a.map(x => x.pathname)")
    found = {int(re.search(r"/(\d+)/change/$", link).group(1)) for link in links}
    assert found == {d.pk for d in matching}
    page.click("#toggle-nav-sidebar")  # room for every column in the screenshot
    page.set_viewport_size({"width": 1920, "height": 480})
    shot(page, artifacts, "decisions")

    page.goto(f"/admin/routing/routingdecision/{slow.pk}/change/")
    assert page.locator(".deletelink").count() == 0 and page.locator("input[name=_save]").count() == 0
    assert re.fullmatch(r"\d+\.\d ms", page.inner_text(".field-elapsed .readonly").strip()) is not None
    assert page.inner_text(".field-elapsed .readonly").strip() == "4.8 ms"


@pytest.mark.parametrize("kind", ["user", "partner_key"])
def test_a_users_and_a_keys_page_show_spend_budgets_with_what_remains_and_limits(console, kind):
    from billing import budgets, money
    from billing.models import Budget, RateLimitPolicy
    from claudeapp.accounts.models import User
    from claudeapp.accounts.principals import Principal
    from claudeapp.api import keys

    alice = User.objects.create(username="alice")
    key, _ = keys.create_key(owner=alice, name="nightly-reports", scopes=["messages"], expires_at=None)
    through_key = _bill(Principal(kind="partner_key", id=key.pk, user_id=alice.pk), 0, "claude-haiku-5-5")
    scope_id = alice.pk if kind == "user" else key.pk
    budget = Budget.objects.create(scope=kind, scope_id=scope_id, period="month", limit_micros=5_000_000)
    budgets.start_from_actual_spend(budget_id=budget.pk)  # as the budget form does
    RateLimitPolicy.objects.create(scope=kind, scope_id=scope_id, requests_per_minute=42)
    page = console
    page.goto(
        f"/admin/accounts/user/{alice.pk}/change/" if kind == "user" else f"/admin/api/partnerkey/{key.pk}/change/"
    )
    overview = page.inner_text("#principal-overview")
    spent = money.usd(through_key.cost_micros)
    left = money.usd(5_000_000 - through_key.cost_micros)
    assert spent in overview and f"{left} left of $5.00" in overview  # a user's budget counts their keys' spend
    assert "42" in overview and "No rate limit applies" not in overview


def test_the_users_usage_page_counts_what_her_budget_counts(console, new_page, login):
    from billing import budgets, money
    from billing.models import Budget
    from claudeapp.accounts.models import User
    from claudeapp.accounts.principals import Principal
    from claudeapp.api import keys
    from claudeapp.chat.templatetags.chat_tags import usd

    alice = User.objects.create(username="alice")
    key, _ = keys.create_key(owner=alice, name="nightly-reports", scopes=["messages"], expires_at=None)
    own = _bill(Principal.for_user(alice), 0, "claude-haiku-5-5").cost_micros
    through_key = _bill(Principal(kind="partner_key", id=key.pk, user_id=alice.pk), 1, "claude-haiku-5-5").cost_micros
    budget = Budget.objects.create(scope="user", scope_id=alice.pk, period="month", limit_micros=1_000_000)
    budgets.start_from_actual_spend(budget_id=budget.pk)
    console.goto(f"/admin/accounts/user/{alice.pk}/change/")
    assert f"({money.usd(own + through_key)} spent or held)" in console.inner_text("#principal-overview")
    page = new_page()
    login(page, alice)
    page.goto("/usage/")
    usage = page.inner_text(".usage-page")
    total = usd(own + through_key)  # the chat's own formatter (four decimals from $0.0001)
    assert total in usage and page.inner_text("#through-keys") == usd(through_key)
    assert f"{total} of $1.00 used" in usage
