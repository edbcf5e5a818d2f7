"""The billing console: scopes picked by name, budgets in dollars that start from the period's spend,
principals named and linked, ledger filters with totals, a CSV with names and dollars, alerts by e-mail."""

from __future__ import annotations

import csv
import io

import pytest
from django.core import mail

from billing import alerts, budgets, ledger, money, prices
from billing.costs import Usage
from billing.models import Budget, BudgetAlert, LedgerEntry, RateLimitPolicy
from claudeapp.accounts.principals import Principal


@pytest.fixture
def staff_client(client, user_factory):
    client.force_login(user_factory(username="operator", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def key_factory(user_factory):
    from claudeapp.api import keys

    def make(*, owner=None, name="reports"):
        key, _ = keys.create_key(owner=owner or user_factory(), name=name, scopes=["messages"], expires_at=None)
        return key

    return make


def _bill(principal: Principal, n: int, model_id: str = "claude-haiku-5-5") -> LedgerEntry:
    return ledger.record(
        principal=principal, kind="message", subject=f"s-{principal.kind}-{n}", model_id=model_id,
        usage=Usage(input_tokens=1000, output_tokens=500), price=prices.current_price(model_id=model_id),
        event_key=f"evt-{principal.kind}-{principal.id}-{n}",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("micros", "shown"),
    [(0, "$0.00"), (2134, "$0.002134"), (14_400, "$0.0144"), (12_500_000, "$12.50"), (1_234_567_890, "$1,234.57")],
)
def test_money_reads_the_same_everywhere_and_never_hides_a_small_spend(micros, shown):
    assert money.usd(micros) == shown


def test_dollars_convert_exactly_to_micro_dollars():
    assert money.to_micros("0.01") == 10_000 and money.to_micros("12.5") == 12_500_000
    with pytest.raises(ValueError):
        money.to_micros("0.0000001")


def test_a_budget_is_entered_in_dollars_for_a_user_picked_by_name_and_starts_from_todays_spend(
    staff_client, seeded, user_factory
):
    alice = user_factory(username="alice")
    spent = sum(_bill(Principal.for_user(alice), n).cost_micros for n in range(3))
    form = staff_client.get("/admin/billing/budget/add/")
    assert b'data-app-label="requestlog"' in form.content and b'data-field-name="user"' in form.content
    response = staff_client.post("/admin/billing/budget/add/", {
        "scope": "user", "user": alice.pk, "period": "day", "limit_dollars": "0.01", "alert_thresholds": "80,95",
        "enabled": "on",
    })  # fmt: skip
    assert response.status_code == 302, response.content
    budget = Budget.objects.get()
    assert (budget.scope_id, budget.limit_micros, budget.spent_micros) == (alice.pk, 10_000, spent)
    listing = staff_client.get("/admin/billing/budget/").content.decode()
    assert "alice" in listing and money.usd(max(0, 10_000 - spent)) in listing


def test_a_second_budget_for_the_same_scope_is_a_form_error_not_a_500(staff_client, seeded, user_factory):
    alice = user_factory(username="alice")
    data = {"scope": "user", "user": alice.pk, "period": "month", "limit_dollars": "5", "enabled": "on"}
    assert staff_client.post("/admin/billing/budget/add/", data).status_code == 302
    again = staff_client.post("/admin/billing/budget/add/", data)
    assert again.status_code == 200 and b"There is one already for this scope" in again.content
    missing = staff_client.post("/admin/billing/budget/add/", {**data, "user": "", "period": "day"})
    assert b"Pick the user this applies to" in missing.content


def test_the_scope_autocomplete_finds_a_partner_key_by_name(staff_client, seeded, key_factory):
    key = key_factory(name="nightly-reports")
    found = staff_client.get("/admin/autocomplete/", {
        "app_label": "requestlog", "model_name": "scopepicker", "field_name": "partner_key", "term": "nightly",
    })  # fmt: skip
    assert found.status_code == 200 and [r["id"] for r in found.json()["results"]] == [str(key.pk)]


def test_a_rate_limit_policy_is_scoped_to_a_key_by_picking_it(staff_client, seeded, key_factory):
    key = key_factory(name="nightly-reports")
    response = staff_client.post("/admin/billing/ratelimitpolicy/add/", {
        "scope": "partner_key", "partner_key": key.pk, "requests_per_minute": 60, "input_tokens_per_minute": 0,
        "output_tokens_per_minute": 0, "concurrent_requests": 0, "enabled": "on",
    })  # fmt: skip
    assert response.status_code == 302, response.content
    assert RateLimitPolicy.objects.get().scope_id == key.pk
    assert "nightly-reports" in staff_client.get("/admin/billing/ratelimitpolicy/").content.decode()


def test_the_ledger_names_principals_filters_by_them_and_totals_the_selection(
    staff_client, seeded, user_factory, key_factory
):
    alice = user_factory(username="alice")
    key = key_factory(name="nightly-reports", owner=alice)
    key_principal = Principal(kind="partner_key", id=key.pk, user_id=alice.pk)
    key_cost = sum(_bill(key_principal, n).cost_micros for n in range(2))
    _bill(Principal.for_user(user_factory(username="bob")), 0, "claude-opus-5-5")
    page = staff_client.get("/admin/billing/ledgerentry/", {"principal": f"partner_key:{key.pk}", "when": "today"})
    body = page.content.decode()
    assert "nightly-reports" in body and f'href="/admin/api/partnerkey/{key.pk}/change/"' in body
    assert page.context["totals"]["cost"] == money.usd(key_cost) and page.context["totals"]["rows"] == 2
    searched = staff_client.get("/admin/billing/ledgerentry/", {"q": "nightly"})
    assert searched.context["totals"]["rows"] == 2
    partner = staff_client.get("/admin/billing/ledgerentry/", {"surface": "partner"})
    assert partner.context["totals"]["rows"] == 2
    yesterday = staff_client.get("/admin/billing/ledgerentry/", {"when": "yesterday"})
    assert yesterday.context["totals"]["rows"] == 0
    rollups = staff_client.get("/admin/billing/dailyrollup/", {"q": "bob"}).content.decode()
    assert "bob" in rollups and "claude-opus-5-5" in rollups


def test_the_csv_carries_names_and_dollars(staff_client, seeded, user_factory):
    entry = _bill(Principal.for_user(user_factory(username="alice")), 0)
    body = b"".join(staff_client.get("/billing/ledger.csv").streaming_content).decode()
    row = next(csv.DictReader(io.StringIO(body)))
    assert row["principal_name"] == "alice" and row["username"] == "alice"
    assert row["cost_usd"] == f"{entry.cost_micros / 1e6:.6f}" and int(row["cost_micros"]) == entry.cost_micros


def test_the_dashboard_headline_is_rounded_like_its_rows_and_principals_are_named(staff_client, seeded, user_factory):
    alice = user_factory(username="alice")
    cost = _bill(Principal.for_user(alice), 0).cost_micros
    body = staff_client.get("/billing/dashboard/").content.decode()
    assert f'<strong id="spend-total">{money.usd(cost)}</strong>' in body
    assert f'<a href="/admin/accounts/user/{alice.pk}/change/">alice</a>' in body


def test_a_users_and_a_keys_page_show_spend_budgets_and_limits(staff_client, seeded, user_factory, key_factory):
    alice = user_factory(username="alice")
    key = key_factory(name="nightly-reports", owner=alice)
    own = _bill(Principal.for_user(alice), 0).cost_micros
    through_key = _bill(Principal(kind="partner_key", id=key.pk, user_id=alice.pk), 1).cost_micros
    Budget.objects.create(scope="user", scope_id=alice.pk, period="month", limit_micros=1_000_000)
    budgets.start_from_actual_spend(budget_id=Budget.objects.get().pk)
    RateLimitPolicy.objects.create(scope="partner_key", scope_id=key.pk, requests_per_minute=60)
    user_page = staff_client.get(f"/admin/accounts/user/{alice.pk}/change/").content.decode()
    assert money.usd(own + through_key) in user_page and money.usd(1_000_000 - own - through_key) + " left" in user_page
    key_page = staff_client.get(f"/admin/api/partnerkey/{key.pk}/change/").content.decode()
    assert 'data-figure="today">' + money.usd(through_key) in key_page
    assert "60 req/min" in key_page and money.usd(1_000_000 - own - through_key) + " left" in key_page


def test_a_budget_created_mid_period_counts_a_keys_and_a_groups_spend(seeded, user_factory, key_factory):
    from django.contrib.auth.models import Group

    team = Group.objects.create(name="analysts")
    alice = user_factory(username="alice")
    alice.groups.add(team)
    key = key_factory(owner=alice)
    cost = _bill(Principal(kind="partner_key", id=key.pk, user_id=alice.pk), 0).cost_micros
    _bill(Principal.for_user(user_factory(username="bob")), 0)
    for scope, scope_id in (("partner_key", key.pk), ("group", team.pk), ("user", alice.pk)):
        budget = Budget.objects.create(scope=scope, scope_id=scope_id, period="day", limit_micros=10**6)
        assert budgets.start_from_actual_spend(budget_id=budget.pk) == cost


def test_an_alert_is_mailed_in_dollars_to_the_operators_and_the_user(seeded, user_factory, settings):
    from billing.tasks import post_budget_alert

    settings.BILLING_ALERT_EMAILS = ["ops@example.com"]
    alice = user_factory(username="alice", email="alice@example.com")
    budget = Budget.objects.create(scope="user", scope_id=alice.pk, period="day", limit_micros=10_000)
    alert = BudgetAlert.objects.create(budget=budget, period_start=budget.period_start, threshold_percent=80,
                                       spent_micros=8_400, limit_micros=10_000)  # fmt: skip
    post_budget_alert(alert.pk)  # no webhook URL: the e-mail alone
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["ops@example.com", "alice@example.com"]
    assert "user alice" in sent.subject and "80%" in sent.subject
    assert "$0.008400 of $0.0100 ($0.001600 left)" in sent.body
    assert alerts.payload(alert)["spent_usd"] == "0.008400" and alerts.payload(alert)["scope_name"] == "user alice"


def test_the_usage_page_counts_spend_through_the_users_keys_as_the_budget_does(
    client, seeded, user_factory, key_factory
):
    from django.urls import reverse

    alice = user_factory(username="alice")
    key = key_factory(owner=alice)
    own = _bill(Principal.for_user(alice), 0).cost_micros
    through_key = _bill(Principal(kind="partner_key", id=key.pk, user_id=alice.pk), 1).cost_micros
    budget = Budget.objects.create(scope="user", scope_id=alice.pk, period="month", limit_micros=1_000_000)
    assert budgets.start_from_actual_spend(budget_id=budget.pk) == own + through_key
    client.force_login(alice)
    summary = client.get(reverse("chat:usage")).context["summary"]
    assert summary.month_spend_micros == own + through_key == summary.budgets[0].spent_micros
    assert summary.through_keys_micros == through_key


def test_the_csv_keeps_to_the_ledger_pages_selection_and_refuses_a_bad_filter(staff_client, seeded, user_factory):
    alice, bob = user_factory(username="alice"), user_factory(username="bob")
    _bill(Principal.for_user(alice), 0)
    _bill(Principal.for_user(bob), 0, "claude-opus-5-5")
    page = staff_client.get("/admin/billing/ledgerentry/", {"principal": f"user:{alice.pk}", "when": "today"})
    link = page.context["csv"]
    assert "alice" in link["label"] and f"principal=user%3A{alice.pk}" in link["url"]
    body = b"".join(staff_client.get(link["url"]).streaming_content).decode()
    assert [r["principal_name"] for r in csv.DictReader(io.StringIO(body))] == ["alice"]
    by_model = b"".join(staff_client.get("/billing/ledger.csv", {"model": "claude-opus-5-5"}).streaming_content)
    assert [r["username"] for r in csv.DictReader(io.StringIO(by_model.decode()))] == ["bob"]
    for bad in ({"principal": "alice"}, {"surface": "fax"}):
        response = staff_client.get("/billing/ledger.csv", bad)
        assert response.status_code == 400 and next(iter(bad)) in response.content.decode()
