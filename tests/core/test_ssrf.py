"""The one SSRF guard, and the budget-alert webhook that now goes through it (job webhooks: tests/jobs)."""

from __future__ import annotations

import datetime as dt
import http.server
import threading

import pytest

from billing import alerts
from billing.models import Budget, BudgetAlert
from claudeapp.core import ssrf
from tests.core.ssrf_forms import NON_PUBLIC_URLS, PUBLIC_URLS


@pytest.mark.parametrize("url", NON_PUBLIC_URLS)
def test_the_guard_refuses_every_spelling_of_a_non_public_target(url):
    with pytest.raises(ssrf.UnsafeUrl):
        ssrf.check_url(url, allow_private=False)


@pytest.mark.parametrize("url", PUBLIC_URLS)
def test_the_guard_lets_public_targets_through_and_pins_the_checked_address(url):
    target = ssrf.check_url(url, allow_private=False)
    assert ssrf.is_public(ssrf.ipaddress.ip_address(target.address))


@pytest.mark.parametrize(
    ("host", "address"),
    [("2130706433", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("127.1", "127.0.0.1"),
     ("10.1", "10.0.0.1"), ("0x0a.0.0.1", "10.0.0.1"), ("example.com", None), ("1.2.3.4.5", None), ("08", None),
     ("256.1.1.1", None), ("1.16777216", None), ("0x", None)],
)  # fmt: skip
def test_legacy_ipv4_spellings_are_read_as_inet_aton_reads_them(host, address):
    found = ssrf.legacy_ipv4(host)
    assert (str(found) if found else None) == address


def _alert(url: str) -> BudgetAlert:
    budget = Budget.objects.create(scope="global", limit_micros=1_000_000, alert_webhook_url=url)
    return BudgetAlert.objects.create(
        budget=budget, period_start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), threshold_percent=80,
        spent_micros=800_000, limit_micros=1_000_000,
    )  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("url", NON_PUBLIC_URLS)
def test_a_budget_alert_webhook_to_a_non_public_target_is_refused_at_delivery(settings, url):
    settings.BILLING_ALERT_WEBHOOK_ALLOW_PRIVATE = False
    outcome = alerts.deliver(_alert(url))
    assert outcome.startswith("refused: ")


@pytest.fixture
def receiver():
    received: list[bytes] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["content-length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_port}/hook", received
    server.shutdown()
    server.server_close()


@pytest.mark.django_db
def test_the_budget_alert_task_sends_nothing_to_a_private_receiver_and_does_not_retry(settings, receiver):
    from billing.tasks import post_budget_alert

    url, received = receiver
    settings.BILLING_ALERT_WEBHOOK_ALLOW_PRIVATE = False
    alert = _alert(url)
    post_budget_alert(alert.pk)  # returns: a refused URL is not retried (a retry would raise Retry here)
    assert received == []

    settings.BILLING_ALERT_WEBHOOK_ALLOW_PRIVATE = True  # development: the same receiver is reached
    post_budget_alert(alert.pk)
    assert len(received) == 1 and b'"threshold_percent":80' in received[0]
