"""GET /admin/health/ in-process: each figure from seeded rows (or Redis state), with the link to its list,
and who may see the page."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.utils import timezone

from claudeapp.claude import breaker
from claudeapp.core import redisconn
from claudeapp.jobs import heartbeat
from claudeapp.jobs.models import Job

pytestmark = pytest.mark.django_db
HAIKU = "claude-haiku-5-5"


@pytest.fixture
def seeded(settings):
    settings.SEED_DEMO_USERS = False
    call_command("seed", stdout=StringIO())


@pytest.fixture
def operator(client, user_factory, seeded):
    user = user_factory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=("view_job", "view_deadjob", "view_message")))
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
    found = re.search(rf'<(a|td)(?P<attrs>[^>]*data-figure="{re.escape(name)}"[^>]*)>(?P<text>.*?)</\1>', body, re.S)
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

    # Only what this test says: live calls of earlier tests on this Redis db taught other axes too.
    redisconn.client().delete(*(upstream._key(HAIKU, axis) for axis in upstream._AXES))
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


def test_error_rate_and_latency_over_15_minutes_count_answers_and_finished_jobs(operator, user_factory):
    from claudeapp.conversations.models import Conversation, Message

    user, now = user_factory(), timezone.now()
    chat = Conversation.objects.create(owner=user)
    for latency, status in ((100, "complete"), (200, "complete"), (300, "truncated"), (1000, "failed")):
        Message.objects.create(conversation=chat, role="assistant", status=status, latency_ms=latency)
    Message.objects.create(conversation=chat, role="user", status="complete")  # a prompt, not a call
    old = Message.objects.create(conversation=chat, role="assistant", status="failed", latency_ms=9)
    Message.objects.filter(pk=old.pk).update(created_at=now - dt.timedelta(minutes=20))  # outside the window
    make_job(
        user, status="succeeded", started_at=now - dt.timedelta(seconds=65), finished_at=now - dt.timedelta(seconds=60)
    )
    make_job(user, status="running", started_at=now)  # not ended

    body = page(operator)
    href, calls = figure(body, "calls")
    assert calls == "5" and href == "/admin/conversations/message/?role__exact=assistant"
    href, errors = figure(body, "errors")
    assert errors == "2" and href == "/admin/conversations/message/?role__exact=assistant&status__exact=failed"
    assert figure(body, "error-rate")[1] == "40.0 %"
    assert figure(body, "p50")[1] == "300 ms"  # of 100, 200, 300, 1000, 5000
    assert figure(body, "p99")[1] == "4840 ms"  # interpolated between 1000 and 5000
    assert operator.get(href).status_code == 200


def test_no_call_in_the_window_shows_dashes(operator):
    body = page(operator)
    assert figure(body, "calls")[1] == "0"
    assert figure(body, "error-rate")[1] == figure(body, "p50")[1] == "—"


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
