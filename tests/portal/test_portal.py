"""The partner portal (/portal/): a key owner's keys within the operator's caps, usage with the classifier
apart, limits, webhook secret and test event, recent calls and the monthly statement."""

from __future__ import annotations

import csv
import datetime as dt
import http.server
import io
import threading

import pytest
from django.utils import timezone

from billing import ledger, prices
from billing.costs import Usage
from billing.models import Budget
from claudeapp.accounts.principals import Principal
from claudeapp.api import keys
from claudeapp.api.models import PartnerKey
from claudeapp.jobs import webhooks
from claudeapp.jobs.models import Job
from claudeapp.portal.models import KeyAllowance

pytestmark = pytest.mark.django_db
KEY_MARK = 'data-secret="key">'


@pytest.fixture
def owner(user_factory):
    return user_factory(username="ada")


@pytest.fixture
def web(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def seeded(db):
    from io import StringIO

    from django.core.management import call_command

    call_command("seed", stdout=StringIO())
    prices._cache.clear()


def _shown_key(html: str) -> str:
    return html.split(KEY_MARK, 1)[1].split("<", 1)[0]


def test_the_portal_needs_a_signed_in_user(client):
    response = client.get("/portal/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_key_is_created_within_the_operators_caps_and_shown_once(web, owner):
    KeyAllowance.objects.create(owner=owner, allowed_scopes=["messages", "models"], max_keys=2)
    response = web.post("/portal/keys/create", {"name": "prod", "scopes": ["messages"]})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    raw = _shown_key(response.content.decode())
    key = keys.verify(raw)
    assert (key.name, key.scopes, key.owner_id) == ("prod", ["messages"], owner.pk)
    assert raw not in web.get("/portal/").content.decode()  # once: the list shows it masked only
    refused = web.post("/portal/keys/create", {"name": "more", "scopes": ["jobs"]})
    assert refused.status_code == 400 and "Not allowed for your keys: jobs" in refused.content.decode()
    web.post("/portal/keys/create", {"name": "second", "scopes": ["models"]})
    third = web.post("/portal/keys/create", {"name": "third", "scopes": ["models"]})
    assert third.status_code == 400 and "2 live keys" in third.content.decode()
    assert PartnerKey.objects.filter(owner=owner).count() == 2


def test_without_an_allowance_no_key_can_be_created(web, owner):
    response = web.post("/portal/keys/create", {"name": "x", "scopes": ["messages"]})
    assert response.status_code == 400 and not PartnerKey.objects.filter(owner=owner).exists()


def test_rotate_and_revoke_work_on_own_keys_only(web, owner, partner_key_factory, user_factory):
    mine = partner_key_factory(owner=owner)
    theirs = partner_key_factory(owner=user_factory())
    for action in ("rotate", "revoke", "webhook-secret/rotate"):
        assert web.post(f"/portal/keys/{theirs.pk}/{action}").status_code == 404
    rotated = web.post(f"/portal/keys/{mine.pk}/rotate")
    new_raw = _shown_key(rotated.content.decode())
    assert keys.verify(new_raw).pk == mine.pk and keys.verify(mine.raw).pk == mine.pk  # the grace
    Job.objects.create(principal_kind="partner_key", principal_id=mine.pk, user=owner, payload={},
                       model_requested="auto", status="queued")  # fmt: skip
    revoked = web.post(f"/portal/keys/{mine.pk}/revoke", follow=True)
    assert "1 queued job(s) canceled" in revoked.content.decode()
    with pytest.raises(keys.InvalidKey):
        keys.verify(new_raw)


def test_limits_show_what_remains_of_each_budget(web, owner, partner_key_factory, seeded):
    key = partner_key_factory(owner=owner)
    Budget.objects.create(scope="partner_key", scope_id=key.pk, period="month", limit_micros=2_000_000,
                          spent_micros=500_000)  # fmt: skip
    html = web.get("/portal/").content.decode()
    assert 'data-figure="remaining">$1.50' in html


class _Receiver(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # http.server calls it by this name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_send_test_event_posts_a_signed_ping_the_partner_can_verify(web, owner, partner_key_factory, settings):
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on loopback
    key = partner_key_factory(owner=owner)
    server = http.server.HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        response = web.post(f"/portal/keys/{key.pk}/webhook-test", {"url": url})
    finally:
        server.shutdown()
    assert response.status_code == 200 and "HTTP 204" in response.content.decode()
    headers, body = _Receiver.seen[-1]
    secret = keys.webhook_secret(key=key).secret
    assert secret in web.get("/portal/").content.decode()  # the secret is on the page to copy
    assert webhooks.verify(secret=secret, body=body, header=headers["X-Gateway-Signature"])
    assert headers["X-Gateway-Event"] == "ping"


def test_a_test_event_to_a_private_address_is_refused(web, owner, partner_key_factory, settings):
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = False
    key = partner_key_factory(owner=owner)
    response = web.post(f"/portal/keys/{key.pk}/webhook-test", {"url": "http://169.254.169.254/latest"})
    assert response.status_code == 400 and "url:" in response.content.decode()


def _bill(principal: Principal, model: str, n: int, kind: str = "message", at: dt.datetime | None = None) -> None:
    ledger.record_once(
        principal=principal, kind=kind, subject=f"s{n}", model_id=model,
        usage=Usage(input_tokens=1000 * n, output_tokens=100 * n), price=prices.current_price(model_id=model),
        event_key=f"{'classification' if kind == 'classification' else 'upstream'}:{principal.key}:{n}", batch=False,
        upstream_request_id=f"req_{n}",
    )  # fmt: skip


def test_usage_breaks_the_classifier_out_and_calls_list_the_ledger(web, owner, partner_key_factory, seeded):
    key = partner_key_factory(owner=owner, name="prod")
    me = Principal(kind="partner_key", id=key.pk, user_id=owner.pk)
    _bill(me, "claude-opus-5-5", 1)
    _bill(me, "claude-haiku-5-5", 2, kind="classification")
    _bill(Principal.for_user(owner), "claude-haiku-5-5", 3)  # browser use
    html = web.get("/portal/usage").content.decode()
    assert 'data-kind="classifier"' in html and "(router classifier)" in html
    assert "Browser (chat)" in html and ">prod<" in html
    calls = web.get("/portal/calls").content.decode()
    assert calls.count("<tr>") == 4 and "Router classifier" in calls and "req_1" in calls  # header + 3 rows


def test_the_monthly_statement_is_a_csv_of_the_months_ledger_lines(web, owner, partner_key_factory, seeded):
    key = partner_key_factory(owner=owner, name="prod")
    _bill(Principal(kind="partner_key", id=key.pk, user_id=owner.pk), "claude-haiku-5-5", 1)
    _bill(Principal(kind="partner_key", id=key.pk, user_id=owner.pk), "claude-haiku-5-5", 2)
    month = timezone.localtime(timezone.now()).strftime("%Y-%m")
    assert f'data-month="{month}"' in web.get("/portal/usage").content.decode()
    response = web.get(f"/portal/statement.csv?month={month}")
    assert response["Content-Disposition"] == f'attachment; filename="statement-{month}.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["time", "surface", "key", "model"] and len(rows) == 3
    assert {row[2] for row in rows[1:]} == {"prod"} and sum(int(row[10]) for row in rows[1:]) > 0
    assert web.get("/portal/statement.csv?month=soon").status_code == 400


def test_a_key_owner_sets_and_removes_alerts_on_a_budget_covering_the_key(web, owner, partner_key_factory, settings):
    from billing.models import AlertSubscription

    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = False
    key = partner_key_factory(owner=owner)
    budget = Budget.objects.create(scope="partner_key", scope_id=key.pk, period="month", limit_micros=2_000_000)
    url = f"/portal/keys/{key.pk}/budgets/{budget.pk}/alerts"
    refused = web.post(url, {"thresholds": "50, 120", "webhook_url": "https://hooks.example.com/b"})
    assert refused.status_code == 400 and "thresholds.1:" in refused.content.decode()
    private = web.post(url, {"thresholds": "50", "webhook_url": "http://169.254.169.254/latest"})
    assert private.status_code == 400 and "webhook_url:" in private.content.decode()
    assert not AlertSubscription.objects.exists()

    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = True  # a loopback URL is accepted once the operator allows private targets
    assert web.post(url, {"thresholds": "80, 50", "webhook_url": "http://127.0.0.1:9/hook"}).status_code == 302
    assert AlertSubscription.objects.get(budget=budget, partner_key_id=key.pk).thresholds == [50, 80]
    assert 'value="50, 80"' in web.get("/portal/").content.decode()
    assert web.post(f"{url}/remove").status_code == 302
    assert not AlertSubscription.objects.exists()


def test_alerts_on_someone_elses_key_or_budget_are_404s(web, owner, partner_key_factory, user_factory):
    mine = partner_key_factory(owner=owner)
    theirs = partner_key_factory(owner=user_factory(username="bob"))
    their_budget = Budget.objects.create(scope="partner_key", scope_id=theirs.pk, period="month", limit_micros=10)
    body = {"thresholds": "50", "webhook_url": "https://hooks.example.com/b"}
    assert web.post(f"/portal/keys/{theirs.pk}/budgets/{their_budget.pk}/alerts", body).status_code == 404
    assert web.post(f"/portal/keys/{mine.pk}/budgets/{their_budget.pk}/alerts", body).status_code == 404


def test_recent_calls_also_list_the_refused_ones_from_the_request_log(web, owner, partner_key_factory, seeded):
    from claudeapp.requestlog.models import RequestLog

    key = partner_key_factory(owner=owner, name="prod")
    _bill(Principal(kind="partner_key", id=key.pk, user_id=owner.pk), "claude-haiku-5-5", 1)
    RequestLog.objects.create(
        created_at=timezone.now(), principal_kind="partner_key", principal_id=key.pk, surface="anthropic",
        status=RequestLog.Status.REFUSED, http_status=402, error_type="billing_error",
        model_requested="claude-opus-5-5", request_id="req_refused_1",
    )  # fmt: skip
    other = partner_key_factory(name="someone else's")  # another owner's refusal stays theirs
    RequestLog.objects.create(
        created_at=timezone.now(), principal_kind="partner_key", principal_id=other.pk, surface="anthropic",
        status=RequestLog.Status.REFUSED, http_status=429, request_id="req_not_mine",
    )  # fmt: skip
    calls = web.get("/portal/calls").content.decode()
    assert calls.count("<tr>") == 3  # header, the refusal (newest), the billed call
    assert "refused (402 billing_error)" in calls and "req_refused_1" in calls and "claude-opus-5-5" in calls
    assert "req_not_mine" not in calls
    assert calls.index("req_refused_1") < calls.index("req_1")
