"""The operator's pages under the Content-Security-Policy in Chromium: the health console and every list
its figures link to, the request log's list and one row's page, each with no violation reported."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.utils import timezone

from claudeapp.jobs.models import Job
from tests.e2e.test_csp_browser import RECORD_VIOLATIONS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def operator_page(browser, seeded_web, login, user_factory) -> Iterator[Any]:
    context = browser.new_context(base_url=seeded_web.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.reports = []  # console lines Chromium writes for a refused resource or inline code
    page.on("console", lambda m: "Content Security Policy" in m.text and page.reports.append(m.text))
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog fired: {dialog.message}"))
    page.operator = user_factory(username="ines", is_staff=True, is_superuser=True)
    login(page, page.operator)
    yield page
    context.close()


def _violations(page: Any) -> list[str]:
    return page.evaluate("window.__csp") + page.reports


def _job(operator: Any, status: str) -> Job:
    return Job.objects.create(principal_kind="user", principal_id=operator.pk, user=operator, payload={},
                              status=status, model_requested="claude-haiku-5-5", queue="interactive",
                              enqueued_at=timezone.now())  # fmt: skip


def test_the_health_console_and_every_list_it_links_render_with_no_violation(operator_page):
    page = operator_page
    for status in ("queued", "dead", "failed"):
        _job(page.operator, status)
    response = page.goto("/admin/health/")
    assert response.status == 200
    page.wait_for_selector("#health-spend")
    links = sorted({href for href in page.eval_on_selector_all("#content a[href]", "as => as.map(a => a.href)")})
    assert len(links) >= 6, links  # breakers, a queue, the DLQ, workers, models, calls, errors, failed, spend
    assert _violations(page) == []

    for url in links:
        response = page.goto(url)
        assert response.status == 200, url
        page.wait_for_load_state("load")
        assert page.locator("#content").count() == 1, url
        assert _violations(page) == [], url


def test_the_request_log_list_and_a_row_render_with_no_violation(operator_page, seeded_web):
    from claudeapp.api import keys

    page = operator_page
    _, raw = keys.create_key(owner=page.operator, name="csp-check", scopes=["messages"], expires_at=None)
    body = {"model": "claude-haiku-5-5", "max_tokens": 16, "messages": [{"role": "user", "content": "Hello"}]}
    response = httpx.post(f"{seeded_web.url}/api/v1/messages", json=body,
                          headers={"authorization": f"Bearer {raw}"}, timeout=30)  # fmt: skip
    assert response.status_code == 200, response.text

    deadline = time.monotonic() + 10  # the web process writes its buffered rows every half second
    while True:
        page.goto("/admin/requestlog/requestlog/")
        if page.locator("#result_list tbody tr").count() >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert "csp-check" in page.inner_text("#result_list")
    assert _violations(page) == []

    with page.expect_navigation():
        page.click("#result_list tbody tr th a")
    assert "/admin/requestlog/requestlog/" in page.url and page.url.rstrip("/").endswith("change")
    assert _violations(page) == []
