"""A partner's own budget alerts (issue 14, item 2): thresholds and a webhook URL on a budget covering the
key, set through /api/v1/limits/budgets/{id}/alerts, validated (400 naming the field), under the job
webhooks' SSRF guard, fired once per threshold and period apart from the operator's, and delivered signed
with the key's webhook secret, verifiable with the documented verify()."""

from __future__ import annotations

import http.server
import json
import re
import threading
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from billing import budgets
from billing.costs import Usage
from billing.models import AlertSubscription, Budget, BudgetAlert
from claudeapp.api import budget_alerts, keys, tasks
from claudeapp.jobs import webhooks
from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db

OPUS = "claude-opus-5-5"
COST = 14_000  # 1,000 in + 500 out on Opus 5.5 at the seeded prices
JOBS_DOCS = Path(__file__).resolve().parents[2] / "docs" / "jobs.md"


@pytest.fixture
def seeded(db):
    from io import StringIO

    from django.core.management import call_command

    from billing import prices

    call_command("seed", stdout=StringIO())
    prices._cache.clear()


@pytest.fixture
def key(partner_key_factory):
    return partner_key_factory(scopes=["messages"])  # self-service needs no scope


@pytest.fixture
def api(key):
    client = APIClient()
    client.credentials(**bearer(key))
    return client


@pytest.fixture
def budget(key):
    # The operator's own alert (80%, no webhook) stays as it is, whatever the partner sets.
    return Budget.objects.create(
        scope="partner_key", scope_id=key.pk, period="month", limit_micros=100_000, alert_thresholds="80"
    )


class Receiver(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[dict[str, str], bytes]] = []
    status = 204

    def do_POST(self) -> None:  # http.server calls it by this name
        self.seen.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver(settings):
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on loopback
    Receiver.seen, Receiver.status = [], 204
    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.url = f"http://127.0.0.1:{server.server_port}/budget"
    yield server
    server.shutdown()
    server.server_close()


def documented_verify():
    """The verify() a receiver copies from docs/jobs.md ("Webhooks"), run as written."""
    blocks = re.findall(r"```python\n(.*?)```", JOBS_DOCS.read_text(), flags=re.S)
    (source,) = [block for block in blocks if "def verify(" in block]
    namespace: dict = {}
    exec(compile(source, "docs/jobs.md", "exec"), namespace)  # our own documentation's example
    return namespace["verify"]


def spend(key, n: int) -> None:
    principal = keys.principal_for(key)
    for i in range(n):
        reservation = budgets.reserve(principal=principal, model_id=OPUS, input_tokens=1000, max_tokens=500)
        budgets.settle(
            reservation=reservation,
            usage=Usage(input_tokens=1000, output_tokens=500),
            event_key=f"alert-test:{key.pk}:{i}:{BudgetAlert.objects.count()}",
            kind="message",
            subject="t",
        )


def test_a_partner_sets_reads_and_removes_its_own_alerts_listed_with_its_limits(api, key, budget, receiver):
    url = f"/api/v1/limits/budgets/{budget.pk}/alerts"
    response = api.put(url, {"thresholds": [80, 50, 50], "webhook_url": receiver.url}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["thresholds"] == [50, 80] and response.json()["webhook_url"] == receiver.url
    (row,) = api.get("/api/v1/limits").json()["budgets"]
    assert row["alerts"]["thresholds"] == [50, 80] and row["alerts"]["fired_this_period"] == []
    assert api.get(url).json()["budget_id"] == budget.pk
    # The operator's settings are untouched: they are the budget's, the partner's are its own row.
    budget.refresh_from_db()
    assert (budget.alert_thresholds, budget.alert_webhook_url) == ("80", "")
    assert api.delete(url).status_code == 204
    assert api.get("/api/v1/limits").json()["budgets"][0]["alerts"] is None
    assert api.get(url).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"thresholds": [0], "webhook_url": "https://hooks.example.com/b"}, "thresholds.0"),
        ({"thresholds": [50, 101], "webhook_url": "https://hooks.example.com/b"}, "thresholds.1"),
        ({"thresholds": ["half"], "webhook_url": "https://hooks.example.com/b"}, "thresholds.0"),
        ({"thresholds": [True], "webhook_url": "https://hooks.example.com/b"}, "thresholds.0"),
        ({"thresholds": [], "webhook_url": "https://hooks.example.com/b"}, "thresholds"),
        ({"thresholds": list(range(1, 12)), "webhook_url": "https://hooks.example.com/b"}, "thresholds"),
        ({"thresholds": "50,80", "webhook_url": "https://hooks.example.com/b"}, "thresholds"),
        ({"thresholds": [50]}, "webhook_url"),
        ({"thresholds": [50], "webhook_url": "ftp://hooks.example.com/b"}, "webhook_url"),
        ({"thresholds": [50], "webhook_url": "http://169.254.169.254/latest/meta-data"}, "webhook_url"),
        ({"thresholds": [50], "webhook_url": "http://127.0.0.1:8000/admin"}, "webhook_url"),
        ({"thresholds": [50], "webhook_url": "http://[::ffff:10.0.0.1]/x"}, "webhook_url"),
    ],
)
def test_bad_thresholds_and_unsafe_urls_are_400s_naming_the_field(api, budget, body, field, settings):
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = False
    response = api.put(f"/api/v1/limits/budgets/{budget.pk}/alerts", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["field"] == field, error
    assert not AlertSubscription.objects.exists()  # nothing half-written


def test_only_budgets_covering_the_key_can_be_watched(api, key, budget, partner_key_factory, receiver):
    other = partner_key_factory(scopes=["messages"])
    theirs = Budget.objects.create(scope="partner_key", scope_id=other.pk, period="month", limit_micros=1_000)
    response = api.put(f"/api/v1/limits/budgets/{theirs.pk}/alerts", {"thresholds": [50], "webhook_url": receiver.url},
                       format="json")  # fmt: skip
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found_error"
    # The owner's user budget and the global one cover the key too: those may be watched.
    owners = Budget.objects.create(scope="user", scope_id=key.owner_id, period="day", limit_micros=1_000_000)
    body = {"thresholds": [90], "webhook_url": receiver.url}
    assert api.put(f"/api/v1/limits/budgets/{owners.pk}/alerts", body, format="json").status_code == 200
    assert not AlertSubscription.objects.filter(budget=theirs).exists()


def test_crossing_a_threshold_posts_a_signed_alert_once_apart_from_the_operators(
    api, key, budget, receiver, seeded, django_capture_on_commit_callbacks
):
    body = {"thresholds": [25, 50], "webhook_url": receiver.url}
    assert api.put(f"/api/v1/limits/budgets/{budget.pk}/alerts", body, format="json").status_code == 200
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        spend(key, 2)  # 28% of the limit: the partner's 25% fires, the operator's 80% does not
    (fired,) = BudgetAlert.objects.filter(subscription__isnull=False)
    assert fired.threshold_percent == 25 and fired.spent_micros == 2 * COST
    assert not BudgetAlert.objects.filter(subscription__isnull=True).exists()
    assert any("post_partner_budget_alert" in repr(c) for c in callbacks)
    tasks.post_partner_budget_alert.apply(args=[fired.pk])  # what the worker runs once the callback enqueued it

    headers, raw = Receiver.seen[-1]
    secret = keys.webhook_secret(key=key).secret
    assert webhooks.verify(secret=secret, body=raw, header=headers["X-Gateway-Signature"])
    assert documented_verify()(secret, raw, headers["X-Gateway-Signature"])  # docs/jobs.md's receiver code
    assert headers["X-Gateway-Event"] == "budget.threshold_reached"
    payload = json.loads(raw)
    assert payload["type"] == "budget.threshold_reached" and payload["audience"] == "partner"
    assert (payload["budget_id"], payload["key_id"], payload["threshold_percent"]) == (budget.pk, key.pk, 25)
    assert payload["limit_micros"] == 100_000 and payload["spent_micros"] == 2 * COST

    spend(key, 4)  # 84%: the partner's 50% once, the operator's own 80% once; 25% not again
    partner = sorted(BudgetAlert.objects.filter(subscription__isnull=False).values_list("threshold_percent", flat=True))
    operator = list(BudgetAlert.objects.filter(subscription__isnull=True).values_list("threshold_percent", flat=True))
    assert (partner, operator) == ([25, 50], [80])
    (row,) = api.get("/api/v1/limits").json()["budgets"]
    assert row["alerts"]["fired_this_period"] == [25, 50]  # what the partner was already told


def test_delivery_checks_the_url_again_and_skips_a_revoked_key(api, key, budget, receiver, seeded, settings):
    body = {"thresholds": [10], "webhook_url": receiver.url}
    assert api.put(f"/api/v1/limits/budgets/{budget.pk}/alerts", body, format="json").status_code == 200
    spend(key, 1)
    alert = BudgetAlert.objects.get(subscription__isnull=False)
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = False  # as if the name now resolved inside
    assert budget_alerts.deliver(alert_id=alert.pk).startswith("refused:")
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = True
    keys.revoke_key(key=key)
    assert budget_alerts.deliver(alert_id=alert.pk) == "skipped: the key is revoked"
    assert Receiver.seen == []


def test_a_receiver_error_is_retried_and_a_refusal_is_not(api, key, budget, receiver, seeded):
    import httpx

    body = {"thresholds": [10], "webhook_url": receiver.url}
    assert api.put(f"/api/v1/limits/budgets/{budget.pk}/alerts", body, format="json").status_code == 200
    spend(key, 1)
    alert = BudgetAlert.objects.get(subscription__isnull=False)
    Receiver.status = 503
    with pytest.raises(httpx.HTTPStatusError):
        budget_alerts.deliver(alert_id=alert.pk)
    Receiver.status = 410
    assert budget_alerts.deliver(alert_id=alert.pk) == "rejected: HTTP 410"


def test_an_alert_on_a_budget_that_stopped_covering_the_key_is_not_sent(api, key, receiver, seeded):
    from django.contrib.auth.models import Group

    analysts = Group.objects.create(name="analysts")
    key.owner.groups.add(analysts)
    shared = Budget.objects.create(scope="group", scope_id=analysts.pk, period="month", limit_micros=100_000)
    body = {"thresholds": [10], "webhook_url": receiver.url}
    assert api.put(f"/api/v1/limits/budgets/{shared.pk}/alerts", body, format="json").status_code == 200
    spend(key, 1)
    alert = BudgetAlert.objects.get(subscription__isnull=False)
    key.owner.groups.remove(analysts)  # the group's budget no longer covers the key
    assert budget_alerts.deliver(alert_id=alert.pk) == "skipped: the budget no longer covers the key"
    assert Receiver.seen == []
