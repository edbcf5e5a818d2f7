from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from billing import ledger, prices
from billing.costs import Usage
from billing.models import Budget, LedgerEntry, PriceVersion, RateLimitPolicy


@pytest.fixture
def staff_client(client, user_factory):
    client.force_login(user_factory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def billed(seeded, principal_factory):
    principal = principal_factory()
    for n, model_id in enumerate(["claude-opus-5-5", "claude-opus-5-5", "claude-haiku-5-5"]):
        ledger.record(
            principal=principal,
            kind="message",
            subject=f"subject-{n}",
            model_id=model_id,
            usage=Usage(input_tokens=1000, output_tokens=500),
            price=prices.current_price(model_id=model_id),
            event_key=f"evt-{n}",
            upstream_request_id=f"req_{n}",
        )
    return principal


def test_the_dashboard_shows_spend_per_day_model_and_principal_to_staff(staff_client, billed):
    response = staff_client.get("/billing/dashboard/?days=7")
    assert response.status_code == 200
    body = response.content.decode()
    assert "claude-opus-5-5" in body and "claude-haiku-5-5" in body
    assert f'href="/admin/accounts/user/{billed.id}/change/"' in body  # named and linked, not "user 7"
    assert '<strong id="spend-total">$0.0284</strong>' in body  # 14_000 + 14_000 + 350 micros, as rows read


def test_the_dashboard_and_the_export_are_staff_only(client, user_factory):
    client.force_login(user_factory())
    for url in ("/billing/dashboard/", "/billing/ledger.csv"):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_ledger_exports_as_streamed_csv_for_a_date_range(staff_client, billed):
    day = ledger.billing_day(LedgerEntry.objects.first().created_at)
    response = staff_client.get(f"/billing/ledger.csv?from={day}&to={day}")
    assert response.status_code == 200 and response.streaming
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["event_key"] for r in rows] == ["evt-0", "evt-1", "evt-2"]
    assert rows[0]["cost_micros"] == "14000"
    empty = staff_client.get("/billing/ledger.csv?from=2020-01-01&to=2020-01-31")
    assert len(b"".join(empty.streaming_content).decode().splitlines()) == 1  # the header only
    assert staff_client.get("/billing/ledger.csv?from=yesterday").status_code == 400


def test_every_billing_admin_page_renders(staff_client, billed, budget_factory):
    budget_factory(scope="global")
    RateLimitPolicy.objects.create(scope="global", requests_per_minute=10)
    for model in ("priceversion", "budget", "budgetalert", "ratelimitpolicy", "ledgerentry", "dailyrollup"):
        assert staff_client.get(reverse(f"admin:billing_{model}_changelist")).status_code == 200, model
    assert staff_client.get(reverse("admin:billing_ledgerentry_changelist") + "?q=req_1").status_code == 200
    price = PriceVersion.objects.first()
    assert staff_client.get(reverse("admin:billing_priceversion_change", args=[price.pk])).status_code == 200
    assert staff_client.get(reverse("admin:billing_budget_change", args=[Budget.objects.get().pk])).status_code == 200
    dashboard = staff_client.get(reverse("admin:billing_spenddashboard_changelist"))
    assert dashboard.status_code == 302 and dashboard["Location"] == "/billing/dashboard/"


def test_the_ledger_cannot_be_added_edited_or_deleted_in_the_admin(staff_client, billed):
    entry = LedgerEntry.objects.first()
    assert staff_client.get(reverse("admin:billing_ledgerentry_add")).status_code == 403
    assert staff_client.get(reverse("admin:billing_ledgerentry_delete", args=[entry.pk])).status_code == 403
    page = staff_client.get(reverse("admin:billing_ledgerentry_change", args=[entry.pk])).content.decode()
    assert 'name="_save"' not in page  # view-only
    assert staff_client.post(reverse("admin:billing_ledgerentry_change", args=[entry.pk]), {}).status_code == 403


def test_the_admin_index_links_the_spend_dashboard(staff_client, db):
    index = staff_client.get(reverse("admin:index")).content.decode()
    assert reverse("admin:billing_spenddashboard_changelist") in index


def _staff_with(user_factory, *perms):
    from django.contrib.auth.models import Permission

    user = user_factory(is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


def test_staff_without_the_ledger_permission_get_403_not_every_tenants_spend(client, user_factory, billed):
    client.force_login(_staff_with(user_factory, "billing.view_budget", "jobs.view_job"))
    for url in ("/billing/dashboard/", "/billing/ledger.csv", "/billing/ledger.csv?from=2020-01-01&to=2099-01-01"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert b"evt-0" not in response.content and b"claude-opus" not in response.content
    assert b"/billing/dashboard/" not in client.get("/admin/").content  # no link to a page they cannot open


def test_staff_with_exactly_the_ledger_permission_see_the_dashboard_and_export(client, user_factory, billed):
    client.force_login(_staff_with(user_factory, "billing.view_ledgerentry"))
    assert client.get("/billing/dashboard/").status_code == 200
    day = ledger.billing_day(LedgerEntry.objects.first().created_at)
    response = client.get(f"/billing/ledger.csv?from={day}&to={day}")
    assert response.status_code == 200
    assert b"evt-0" in b"".join(response.streaming_content)
    assert b"/billing/dashboard/" in client.get("/admin/").content


def test_out_of_range_export_dates_are_400(staff_client):
    for query in ("to=9999-12-31", "from=0001-01-01", "from=2026-01-01&to=9999-12-31"):
        assert staff_client.get(f"/billing/ledger.csv?{query}").status_code == 400, query


def test_partners_own_budget_alerts_are_listed_for_the_operator_by_key_name(staff_client, budget_factory, user_factory):
    from billing.models import AlertSubscription
    from claudeapp.api import keys

    key, _ = keys.create_key(owner=user_factory(), name="acme-prod", scopes=["messages"])
    budget = budget_factory(scope="partner_key", scope_id=key.pk)
    AlertSubscription.objects.create(
        budget=budget, partner_key_id=key.pk, thresholds=[50, 90], webhook_url="https://hooks.example.com/a"
    )
    page = staff_client.get(reverse("admin:billing_alertsubscription_changelist")).content.decode()
    assert "acme-prod" in page and "https://hooks.example.com/a" in page
    assert staff_client.get(reverse("admin:billing_alertsubscription_add")).status_code == 403  # the partner's to set
