"""The admin's health console in Chromium: the figures render, a figure's link leads to its list, the page
is kept as a screenshot in test-artifacts/, and the Content-Security-Policy reports no violation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from claudeapp.jobs.models import Job
from claudeapp.requestlog import services
from tests.e2e.test_csp_browser import RECORD_VIOLATIONS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def health_page(browser, seeded_web) -> Iterator[Any]:
    context = browser.new_context(base_url=seeded_web.url, viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(10_000)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.reports = []  # console lines Chromium writes for a refused resource or inline code
    page.on("console", lambda m: "Content Security Policy" in m.text and page.reports.append(m.text))
    yield page
    context.close()


def test_the_health_console_renders_its_figures_and_links_to_the_queued_jobs_and_the_request_log(
    health_page, login, user_factory, artifacts
):
    operator = user_factory(username="hana", is_staff=True, is_superuser=True)
    for waited in (90, 10):
        Job.objects.create(
            principal_kind="user", principal_id=operator.pk, user=operator, payload={}, status="queued",
            model_requested="claude-haiku-5-5", queue="interactive",
            enqueued_at=timezone.now() - dt.timedelta(seconds=waited),
        )  # fmt: skip
    for surface, status in (("api", "complete"), ("api", "failed"), ("anthropic", "complete")):
        services.record(fields={"status": status, "principal_kind": "user", "principal_id": operator.pk,
                                "duration_ms": 250.0}, surface=surface)  # fmt: skip
    page = health_page
    login(page, operator)
    page.goto("/admin/")
    page.click("text=Health console")
    page.wait_for_selector("#health-spend")
    assert page.url.endswith("/admin/health/")
    for module in ("breakers", "queues", "workers", "headroom", "calls", "spend"):
        assert page.locator(f"#health-{module} h2").is_visible()
        assert page.locator(f"#health-{module} .errornote").count() == 0  # every source was readable
    assert page.inner_text("[data-figure=depth-interactive]") == "2"
    assert int(page.inner_text("[data-figure=age-interactive]")) >= 90
    assert page.inner_text("[data-figure=dlq]") == "0 jobs"
    assert page.inner_text("[data-figure=spend]") == "$0.00"
    assert page.inner_text("[data-figure=breaker-claude-haiku-5-5]") == "closed"
    assert page.inner_text("[data-figure=calls]") == "3" and page.inner_text("[data-figure=error-rate-api]") == "50.0 %"
    assert page.inner_text("[data-figure=calls-chat]") == "0" and page.inner_text("[data-figure=p50-chat]") == "—"
    page.screenshot(path=str(artifacts / "health-console.png"), full_page=True)
    assert page.evaluate("window.__csp") + page.reports == []

    page.click("[data-figure=depth-interactive]")
    page.wait_for_selector("#result_list")
    assert "queue__exact=interactive" in page.url and "status__exact=queued" in page.url
    assert page.locator("#result_list tbody tr").count() == 2
    assert page.evaluate("window.__csp") + page.reports == []

    page.go_back()
    page.click("[data-figure=errors-api]")
    page.wait_for_selector("#result_list")
    assert "outcome=errors" in page.url and "surface__exact=api" in page.url
    assert page.locator("#result_list tbody tr").count() == 1
    assert page.evaluate("window.__csp") + page.reports == []
