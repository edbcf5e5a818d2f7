"""GET /admin/health/ in-process: each figure from seeded rows (or Redis state), with the link to its list,
and who may see the page."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from io import StringIO
from urllib.parse import parse_qs

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.utils import timezone

from claudeapp.claude import breaker
from claudeapp.core import redisconn
from claudeapp.jobs import heartbeat
from claudeapp.jobs.models import Job
from claudeapp.requestlog import services

pytestmark = pytest.mark.django_db
HAIKU = "claude-haiku-5-5"


@pytest.fixture
def seeded(settings):
    settings.SEED_DEMO_USERS = False
    call_command("seed", stdout=StringIO())


@pytest.fixture
def operator(client, user_factory, seeded):
    user = user_factory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=("view_job", "view_deadjob", "view_requestlog")))
    client.force_login(user)
    return client


@pytest.fixture
def superuser_client(client, user_factory, seeded):
    client.force_login(user_factory(is_staff=True, is_superuser=True))
    return client


def page(client) -> str:
    response = client.get("/admin/health/")
    assert response.status_code == 200
    return unescape(response.content.decode())


def figure(body: str, name: str) -> tuple[str | None, str]:
    """(href or None, text) of the element marked data-figure=name."""
    marked = rf'<(a|td|span)(?P<attrs>[^>]*data-figure="{re.escape(name)}"[^>]*)>(?P<text>.*?)</\1>'
    found = re.search(marked, body, re.S)
    assert found, f"no figure {name}"
    href = re.search(r'href="([^"]+)"', found["attrs"])
    return (href[1] if href else None), re.sub(r"<[^>]+>", "", found["text"]).strip()


def make_job(user, *, status: str, queue: str = "interactive", **fields) -> Job:
    return Job.objects.create(
        principal_kind="user", principal_id=user.pk, user=user, payload={}, model_requested=HAIKU,
        status=status, queue=queue, **fields,
    )  # fmt: skip


def test_staff_without_the_permission_get_403_and_others_the_login(client, user_factory, seeded):
    client.force_login(user_factory(is_staff=True))
    assert client.get("/admin/health/").status_code == 403
    client.force_login(user_factory())
    response = client.get("/admin/health/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_admin_index_links_the_console(superuser_client):
    assert 'href="/admin/health/"' in superuser_client.get("/admin/").content.decode()


def test_an_open_breaker_shows_and_links_the_breakers_page(operator, breaker_settings):
    breaker.reset(HAIKU)
    try:
        for _ in range(3):
            breaker.default_breaker.record_failure(breaker.default_breaker.allow(HAIKU))
        body = page(operator)
    finally:
        breaker.reset(HAIKU)
    assert figure(body, f"breaker-{HAIKU}")[1] == "open"
    assert f'<a href="/admin/breakers/">{HAIKU}</a>' in body


def test_queue_depth_and_oldest_age_link_the_queued_jobs_of_that_queue(operator, user_factory):
    user, now = user_factory(), timezone.now()
    make_job(user, status="queued", enqueued_at=now - dt.timedelta(seconds=120))
    make_job(user, status="queued", enqueued_at=now - dt.timedelta(seconds=5))
    make_job(user, status="queued", queue="bulk", enqueued_at=now - dt.timedelta(seconds=30))
    make_job(user, status="running")
    body = page(operator)
    href, depth = figure(body, "depth-interactive")
    assert depth == "2" and figure(body, "depth-bulk")[1] == "1"
    assert 120 <= int(figure(body, "age-interactive")[1]) < 3600
    assert href == "/admin/jobs/job/?queue__exact=interactive&status__exact=queued"
    listed = operator.get(href).content.decode()
    assert "2 jobs" in listed or "2 results" in listed


def test_the_dead_letter_queue_counts_dead_jobs_and_links_its_list(operator, user_factory):
    user = user_factory()
    make_job(user, status="dead")
    make_job(user, status="dead", queue="bulk")
    make_job(user, status="failed")
    href, text = figure(page(operator), "dlq")
    assert text == "2 jobs" and href == "/admin/jobs/deadjob/"
    assert operator.get(href).status_code == 200


def test_workers_are_the_processes_whose_heartbeat_key_is_live(operator):
    client = redisconn.client()
    for key in client.scan_iter(heartbeat.worker_key_pattern()):
        client.delete(key)
    assert figure(page(operator), "workers")[1] == "0 worker processes"
    heartbeat.announce()  # what each worker's heartbeat thread does every beat
    try:
        keys = list(client.scan_iter(heartbeat.worker_key_pattern()))
        assert len(keys) == 1 and 0 < client.ttl(keys[0]) <= heartbeat.WORKER_KEY_TTL_SECONDS
        href, text = figure(page(operator), "workers")
    finally:
        client.delete(*keys)
    assert text == "1 worker process"
    assert href == "/admin/jobs/job/?status__exact=running"


def test_upstream_headroom_is_what_the_headers_said_per_model(operator):
    from billing import upstream

    # Only what this test says: live calls of earlier tests on this Redis db taught other axes and models too.
    learned = [upstream._key(model, axis) for model in (HAIKU, "claude-sonnet-5-5") for axis in upstream._AXES]
    redisconn.client().delete(*learned)
    upstream.observe_upstream(
        model_id=HAIKU,
        headers={"anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "40"},
    )
    try:
        href_body = page(operator)
    finally:
        redisconn.client().delete(*(upstream._key(HAIKU, axis) for axis in upstream._AXES))
    text = figure(href_body, f"headroom-{HAIKU}")[1]
    assert re.fullmatch(r"requests 4\d / 50", text), text  # refills at 50 a minute from 40 while the test runs
    assert figure(href_body, "headroom-claude-sonnet-5-5")[1] == "nothing learned in the last 5 minutes"
    assert f'<a href="/admin/routing/model/">{HAIKU}</a>' in href_body


def log_call(surface: str, status: str, duration_ms: float | None, *, ago: dt.timedelta, http_status=None) -> None:
    """One request log row, through the product's own write API (what the reaper uses)."""
    fields = {"status": status, "principal_kind": "user", "principal_id": 1, "duration_ms": duration_ms,
              "model_requested": HAIKU, "http_status": http_status}  # fmt: skip
    services.record(fields=fields, at=timezone.now() - ago, surface=surface)


SECONDS = dt.timedelta(seconds=30)
CALLS = [  # surface, status, duration_ms, http_status
    ("chat", "complete", 100, None), ("chat", "complete", 200, None), ("chat", "failed", 1000, 529),
    ("api", "complete", 300, None), ("api", "cut", 400, None), ("api", "disconnect", 500, None),
    ("api", "refused", 2, 429),
    ("anthropic", "error", 600, None), ("anthropic", "complete", 700, None), ("anthropic", "refused", 3, 402),
    ("jobs", "interrupted", None, None), ("jobs", "complete", 800, None),
]  # fmt: skip


@pytest.fixture
def logged_calls():
    for surface, status, duration, http_status in CALLS:
        log_call(surface, status, duration, ago=SECONDS, http_status=http_status)
    log_call("api", "failed", 9, ago=dt.timedelta(minutes=20), http_status=500)  # outside the window


def calls_module(body: str) -> str:
    return body.split('id="health-calls"', 1)[1].split('<div class="module"', 1)[0]


def test_calls_errors_and_latency_over_15_minutes_count_every_surface_from_the_request_log(operator, logged_calls):
    body = page(operator)
    assert figure(body, "calls")[1] == "10"  # every status but refused, in the window
    assert figure(body, "errors")[1] == "4"  # failed, cut, error, interrupted
    assert figure(body, "error-rate")[1] == "40.0 %"
    assert figure(body, "refused")[1] == "2"
    # percentile_cont over 100, 200, 300, 400, 500, 600, 700, 800, 1000 (the interrupted call has no duration):
    assert figure(body, "p50")[1] == "500 ms"
    assert figure(body, "p99")[1] == "984 ms"  # 800 + 0.92 * (1000 - 800)


def test_the_per_surface_table_splits_the_same_figures(operator, logged_calls):
    body = page(operator)
    expected = {  # calls, errors, error rate, p50, p99, refused
        "chat": ("3", "1", "33.3 %", "200 ms", "984 ms", "0"),  # 200 + 0.98 * (1000 - 200)
        "api": ("3", "1", "33.3 %", "400 ms", "498 ms", "1"),
        "anthropic": ("2", "1", "50.0 %", "650 ms", "699 ms", "1"),
        "jobs": ("2", "1", "50.0 %", "800 ms", "800 ms", "0"),
    }
    names = ("calls", "errors", "error-rate", "p50", "p99", "refused")
    for surface, row in expected.items():
        assert tuple(figure(body, f"{name}-{surface}")[1] for name in names) == row, surface


def test_each_call_figure_links_the_request_log_rows_it_counts(operator, logged_calls):
    body = page(operator)
    href, _ = figure(body, "calls")
    path, query = href.split("?", 1)
    params = parse_qs(query)
    assert path == "/admin/requestlog/requestlog/"
    assert params["outcome"] == ["ran"] and "surface__exact" not in params
    since = dt.datetime.fromisoformat(params["created_at__gte"][0])
    until = dt.datetime.fromisoformat(params["created_at__lte"][0])
    assert until - since == dt.timedelta(minutes=15)

    counted = {"calls": "ran", "errors": "errors", "refused": "refused"}
    for name, outcome in counted.items():
        for suffix in ("", "-chat", "-api", "-anthropic", "-jobs", "-batches"):
            href, text = figure(body, name + suffix)
            assert f"outcome={outcome}" in href and (not suffix or f"surface__exact={suffix[1:]}" in href)
            response = operator.get(href)
            assert response.status_code == 200, href
            assert response.context["cl"].result_count == int(text), href  # the list shows what was counted

    links = re.findall(r'href="([^"]+)"', calls_module(body))
    assert len(links) == 6 * 6  # six figures, for all surfaces and for each of the five (no "other": none logged)
    for href in set(links):
        assert operator.get(href).status_code == 200, href


def test_calls_logged_with_no_surface_show_as_an_other_row_so_the_rows_add_up_to_the_total(operator, logged_calls):
    assert 'data-figure="calls-other"' not in calls_module(page(operator))  # none yet: no row
    log_call("batches", "complete", None, ago=SECONDS)  # a batch item: no duration
    log_call("batches", "failed", None, ago=SECONDS)
    log_call("", "complete", 50, ago=SECONDS)  # e.g. logged outside any request or task
    log_call("", "refused", 1, ago=SECONDS, http_status=429)
    body = page(operator)

    names = ("calls", "errors", "refused")
    assert tuple(figure(body, f"{name}-other")[1] for name in names) == ("1", "0", "1")
    assert (figure(body, "p50-other")[1], figure(body, "p50-batches")[1]) == ("50 ms", "—")
    assert tuple(figure(body, f"{name}-batches")[1] for name in names) == ("2", "1", "0")
    rows = ("chat", "api", "anthropic", "jobs", "batches", "other")
    for name in names:
        assert sum(int(figure(body, f"{name}-{row}")[1]) for row in rows) == int(figure(body, name)[1]), name
    assert figure(body, "calls")[1] == "13" and figure(body, "p50")[1] == "450 ms"  # batch items have no latency
    href, _ = figure(body, "refused-other")
    response = operator.get(href)  # the rows it counts: the blank surface's
    assert response.status_code == 200 and response.context["cl"].result_count == 1, href


def test_without_the_request_log_permission_the_call_figures_show_without_links(client, user_factory, seeded):
    user = user_factory(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_job"))
    client.force_login(user)
    log_call("api", "complete", 100, ago=SECONDS)
    body = page(client)
    assert figure(body, "calls") == (None, "1") and figure(body, "calls-api") == (None, "1")
    assert "href" not in calls_module(body)


def test_the_outcome_filter_groups_the_statuses_as_the_console_counts_them(operator, logged_calls):
    for outcome, count in (("ran", 11), ("ok", 6), ("errors", 5), ("refused", 2)):  # 11 and 5: the old row too
        response = operator.get(f"/admin/requestlog/requestlog/?outcome={outcome}")
        assert response.status_code == 200
        assert response.context["cl"].result_count == count, outcome


def test_no_call_in_the_window_shows_zero_and_dashes(operator):
    log_call("chat", "complete", 100, ago=dt.timedelta(minutes=16))
    body = page(operator)
    for suffix in ("", "-chat", "-api", "-anthropic", "-jobs", "-batches"):
        assert figure(body, "calls" + suffix)[1] == figure(body, "errors" + suffix)[1] == "0"
        assert figure(body, "error-rate" + suffix)[1] == figure(body, "p50" + suffix)[1] == "—"
        assert figure(body, "p99" + suffix)[1] == "—"


def test_spend_today_sums_the_billing_days_rollups_and_links_todays_ledger(superuser_client, settings):
    from billing.ledger import billing_day
    from billing.models import DailyRollup

    settings.BILLING_TIME_ZONE = "America/New_York"
    today = billing_day(timezone.now())
    rows = ((today, 1, 1_500_000, 3), (today, 2, 250_000, 1), (today - dt.timedelta(days=1), 1, 9_000_000, 7))
    for day, principal, cost, requests in rows:
        DailyRollup.objects.create(day=day, principal_kind="user", principal_id=principal, model_id=HAIKU,
                                   cost_micros=cost, requests=requests)  # fmt: skip
    body = page(superuser_client)
    href, text = figure(body, "spend")
    assert text == "$1.75"
    assert "over 4 billed calls on " + today.isoformat() in body
    assert href.startswith("/admin/billing/ledgerentry/?created_at__gte=")
    assert "-05%3A00" in href or "-04%3A00" in href or "%2B00%3A00" in href  # the billing day's bounds
    assert superuser_client.get(href).status_code == 200


def test_with_redis_unreachable_its_figures_say_so_and_the_rest_renders(operator, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1: refused at once
    body = page(operator)
    for module in ("workers", "headroom"):
        section = body.split(f'id="health-{module}"', 1)[1].split('<div class="module"', 1)[0]
        assert "Unavailable (Redis)" in section
    assert figure(body, "depth-interactive")[1] == "0"
    assert figure(body, "spend")[1] == "$0.00"
