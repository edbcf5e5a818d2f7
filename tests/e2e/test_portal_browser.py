"""The partner portal in Chromium: a key owner creates a key within the operator's caps (shown once),
rotates it, sees what remains of a budget, rotates the webhook secret, reads usage with the classifier
apart and recent calls, and downloads a statement. Screenshots go to test-artifacts/; the
Content-Security-Policy reports no violation on any page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from billing import ledger, prices
from billing.costs import Usage
from billing.models import Budget
from claudeapp.accounts.principals import Principal
from claudeapp.api import keys
from claudeapp.api.models import PartnerKey
from claudeapp.portal.models import KeyAllowance
from tests.e2e.test_csp_browser import RECORD_VIOLATIONS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def portal_page(browser, seeded_web) -> Iterator[Any]:
    context = browser.new_context(base_url=seeded_web.url, viewport={"width": 1280, "height": 1000},
                                  accept_downloads=True)  # fmt: skip
    context.set_default_timeout(15_000)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.reports = []
    page.on("console", lambda m: "Content Security Policy" in m.text and page.reports.append(m.text))
    yield page
    context.close()


def _violations(page: Any) -> list[str]:
    return page.evaluate("window.__csp") + page.reports


def _bill(principal: Principal, model: str, n: int, kind: str) -> None:
    prices._cache.clear()
    ledger.record_once(
        principal=principal, kind=kind, subject=f"s{n}", model_id=model,
        usage=Usage(input_tokens=2000 * n, output_tokens=300 * n), price=prices.current_price(model_id=model),
        event_key=f"{'classification' if kind == 'classification' else 'upstream'}:e2e:{n}", batch=False,
        upstream_request_id=f"req_e2e_{n}",
    )  # fmt: skip


def test_a_key_owner_manages_keys_limits_webhooks_and_reads_usage(portal_page, login, user_factory, artifacts):
    owner = user_factory(username="grace")
    KeyAllowance.objects.create(owner=owner, allowed_scopes=["messages", "models", "usage"], max_keys=3)
    page = portal_page
    login(page, owner)

    page.goto("/portal/")
    page.fill("#create-key input[name=name]", "production")
    page.click("#create-key button[type=submit]")
    raw = page.inner_text("#shown-key [data-secret=key]")
    key = keys.verify(raw)
    assert key.name == "production" and set(key.scopes) == {"messages", "models", "usage"}
    page.screenshot(path=str(artifacts / "portal-key-created.png"), full_page=True)
    assert _violations(page) == []

    Budget.objects.create(scope="partner_key", scope_id=key.pk, period="month", limit_micros=10_000_000,
                          spent_micros=2_500_000)  # fmt: skip
    me = Principal(kind="partner_key", id=key.pk, user_id=owner.pk)
    _bill(me, "claude-sonnet-5-5", 1, "message")
    _bill(me, "claude-haiku-5-5", 2, "classification")

    page.click(f"tr[data-key='{key.pk}'] button[data-action=rotate]")
    rotated = page.inner_text("#shown-key [data-secret=key]")
    assert rotated != raw and keys.verify(rotated).pk == key.pk and keys.verify(raw).pk == key.pk  # grace
    assert page.inner_text("#limits tr[data-budget] [data-figure=remaining]") == "$7.50"
    old_secret = page.inner_text(f".webhook[data-key='{key.pk}'] [data-secret=webhook]")
    page.click(f".webhook[data-key='{key.pk}'] button[data-action=rotate-secret]")
    page.wait_for_selector(".notice")
    new_secret = page.inner_text(f".webhook[data-key='{key.pk}'] [data-secret=webhook]")
    assert new_secret != old_secret and new_secret == keys.webhook_secret(key=key).secret
    page.screenshot(path=str(artifacts / "portal-keys-and-limits.png"), full_page=True)
    assert _violations(page) == []

    page.click("nav >> text=Usage")
    page.wait_for_selector("#by-model")
    assert page.locator("#by-model [data-kind=classifier]").count() == 1
    assert page.locator("#by-model [data-kind=calls]").count() == 1
    assert "production" in page.inner_text("#by-key")
    page.screenshot(path=str(artifacts / "portal-usage.png"), full_page=True)
    month = timezone.localtime(timezone.now()).strftime("%Y-%m")
    with page.expect_download() as download:
        page.click(f"a[data-month='{month}']")
    lines = open(download.value.path()).read().strip().splitlines()  # noqa: SIM115 - a temporary file
    assert lines[0].startswith("time,surface,key,model") and len(lines) == 3
    assert _violations(page) == []

    page.click("nav >> text=Recent calls")
    page.wait_for_selector("#calls")
    assert page.locator("#calls tbody tr").count() == 2 and "Router classifier" in page.inner_text("#calls")
    page.screenshot(path=str(artifacts / "portal-calls.png"), full_page=True)
    assert _violations(page) == []

    page.goto("/portal/")
    page.click(f"tr[data-key='{key.pk}'] button[data-action=revoke]")
    page.wait_for_selector(".notice")
    assert PartnerKey.objects.get(pk=key.pk).revoked_at is not None
    assert _violations(page) == []


def test_a_key_owner_sets_budget_alerts_and_sends_a_test_event(portal_page, login, user_factory, artifacts):
    from billing.models import AlertSubscription

    owner = user_factory(username="hopper")
    key, _ = keys.create_key(owner=owner, name="alerts", scopes=["messages"])
    budget = Budget.objects.create(scope="partner_key", scope_id=key.pk, period="month", limit_micros=5_000_000)
    page = portal_page
    login(page, owner)
    page.goto("/portal/")
    row = f"#limits tr[data-budget='{budget.pk}']"

    page.fill(f"{row} input[name=thresholds]", "50, 120")  # 120 % is refused, naming the field
    page.fill(f"{row} input[name=webhook_url]", "https://93.184.215.14/budget")  # a public address
    page.click(f"{row} button[data-action=save-alerts]")
    assert page.inner_text("#refused").startswith("thresholds.1:")
    assert not AlertSubscription.objects.exists()

    page.fill(f"{row} input[name=thresholds]", "80, 50")
    page.fill(f"{row} input[name=webhook_url]", "https://93.184.215.14/budget")
    page.click(f"{row} button[data-action=save-alerts]")
    page.wait_for_selector(".notice")
    assert page.input_value(f"{row} input[name=thresholds]") == "50, 80"
    assert AlertSubscription.objects.get(budget=budget, partner_key_id=key.pk).thresholds == [50, 80]
    page.screenshot(path=str(artifacts / "portal-budget-alerts.png"), full_page=True)
    assert _violations(page) == []

    # The test event goes through the webhooks' SSRF guard: an internal address is refused on the page.
    page.fill(f".webhook[data-key='{key.pk}'] input[name=url]", "http://169.254.169.254/latest")
    page.click(f".webhook[data-key='{key.pk}'] button[data-action=send-test]")
    assert page.inner_text("#refused").startswith("url:")

    page.click(f"{row} button[data-action=remove-alerts]")
    page.wait_for_selector(".notice")
    assert not AlertSubscription.objects.exists()
    assert _violations(page) == []


def test_a_key_owners_calls_today_show_in_the_usage_by_day_chart(portal_page, login, user_factory, seeded_web):
    import httpx

    from billing.ledger import billing_day
    from billing.models import LedgerEntry
    from claudeapp.portal import selectors
    from claudeapp.portal.templatetags.portal_tags import dollars

    owner = user_factory(username="ada")
    key, raw = keys.create_key(owner=owner, name="reports", scopes=["messages"])
    body = {"model": "claude-haiku-5-5", "max_tokens": 16, "messages": [{"role": "user", "content": "Tide pools?"}]}
    with httpx.Client(base_url=seeded_web.url, timeout=30, headers={"authorization": f"Bearer {raw}"}) as http:
        for _ in range(3):
            assert http.post("/api/v1/messages", json=body).status_code == 200
    billed = sum(LedgerEntry.objects.filter(principal_kind="partner_key", principal_id=key.pk)
                 .values_list("cost_micros", flat=True))  # fmt: skip
    assert billed > 0
    today = billing_day(timezone.now())
    # The chart's data: today's bar holds the three calls and what they cost.
    by_day = selectors.usage(owner)["by_day"]
    assert [(row["day"], row["requests"], row["cost_micros"]) for row in by_day] == [(today, 3, billed)]

    page = portal_page
    login(page, owner)
    page.goto("/portal/usage")
    bars = page.locator("#by-day .bar-row")
    assert bars.count() == 1
    assert bars.first.locator("span").first.inner_text() == today.isoformat()
    assert bars.first.locator(".num").inner_text() == dollars(billed)
    assert "width: 100" in bars.first.locator(".bar").get_attribute("style")  # the one day is the tallest
    assert page.inner_text("[data-figure=total]") == dollars(billed)
    assert _violations(page) == []


def test_a_key_owner_sends_a_test_event_to_their_receiver(portal_page, login, user_factory, emulator, artifacts):
    import http.server
    import threading

    from django.db import connection

    from claudeapp.jobs import webhooks
    from tests.e2e.conftest import PatientWebServer
    from tests.fixtures.live_web import database_url, web_env
    from tests.portal.test_portal import _Receiver

    owner = user_factory(username="lovelace")
    key, _ = keys.create_key(owner=owner, name="events", scopes=["messages"])
    # The receiver is on loopback, which the SSRF guard refuses in production: a gateway of this test's own
    # lets private targets through (JOBS_WEBHOOK_ALLOW_PRIVATE, as the server-side portal test does).
    gateway = PatientWebServer(web_env(database=database_url(connection.settings_dict), emulator_url=emulator.url,
                                       extra={"JOBS_WEBHOOK_ALLOW_PRIVATE": "1"}))  # fmt: skip
    receiver = http.server.HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    _Receiver.seen.clear()
    try:
        page = portal_page
        login(page, owner)  # a session cookie for 127.0.0.1, sent to either port
        page.goto(f"{gateway.url}/portal/")
        url = f"http://127.0.0.1:{receiver.server_port}/hooks/claude"
        page.fill(f".webhook[data-key='{key.pk}'] input[name=url]", url)
        page.click(f".webhook[data-key='{key.pk}'] button[data-action=send-test]")
        result = page.inner_text(f".webhook[data-key='{key.pk}'] #test-result")
        assert result.startswith("Test event sent: HTTP 204 in ") and result.endswith("ms, accepted."), result
        page.screenshot(path=str(artifacts / "portal-test-event.png"), full_page=True)
        assert _violations(page) == []
    finally:
        receiver.shutdown()
        gateway.stop()
    [(headers, body)] = _Receiver.seen
    assert headers["X-Gateway-Event"] == "ping" and b'"type":"ping"' in body
    secret = keys.webhook_secret(key=key).secret  # the key's own signing secret, shown on the portal
    assert webhooks.verify(secret=secret, body=body, header=headers["X-Gateway-Signature"])
