"""The chat, the admin and the API docs in Chromium under the Content-Security-Policy: every page works
and the browser reports no violation (scripts only from our origin, the docs' start-up script by nonce)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from claudeapp.conversations.models import Conversation

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ANSWER = "article.message.assistant"
# Registered before any page script runs, in every document of the context.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture
def csp_page(browser, seeded_web) -> Iterator[Callable[..., Any]]:
    """A page whose CSP violations (events and console reports) are collected; dialogs are left to the test."""
    contexts = []

    def make() -> Any:
        context = browser.new_context(base_url=seeded_web.url, viewport={"width": 1280, "height": 800})
        context.set_default_timeout(10_000)
        context.add_init_script(RECORD_VIOLATIONS)
        contexts.append(context)
        page = context.new_page()
        page.reports = []  # console lines Chromium writes for a refused resource or inline code
        page.on("console", lambda m: "Content Security Policy" in m.text and page.reports.append(m.text))
        return page

    yield make
    for context in contexts:
        context.close()


def violations(page: Any) -> list[str]:
    return page.evaluate("window.__csp") + page.reports


def test_the_chat_streams_an_answer_and_deletes_after_confirming_with_no_violation(csp_page, login, user_factory):
    page = csp_page()
    login(page, user_factory(username="dora"), form=True)  # the sign-in page too
    page.fill("#prompt", "What is a tide pool? [[words:30]]")
    page.press("#prompt", "Enter")
    page.wait_for_selector(f"{ANSWER}.status-complete")
    assert "/c/" in page.url
    assert violations(page) == []

    page.reload()  # the conversation's own page, with its Rename and Delete forms
    page.wait_for_selector("button.danger")
    page.once("dialog", lambda dialog: dialog.dismiss())  # the confirm lives in chat.js now, not onsubmit
    page.click("button.danger")
    assert "/c/" in page.url and Conversation.objects.count() == 1  # click() waits for a navigation it starts

    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.click("button.danger")
    assert Conversation.objects.count() == 0
    assert violations(page) == []


@pytest.mark.parametrize(
    "path",
    ["/admin/", "/admin/billing/budget/add/", "/admin/routing/routingrule/", "/admin/accounts/user/add/",
     "/billing/dashboard/", "/admin/breakers/", "/usage/", "/my/jobs/"],
)  # fmt: skip
def test_admin_and_account_pages_render_with_no_violation(csp_page, login, user_factory, path):
    page = csp_page()
    login(page, user_factory(username="olga", is_staff=True, is_superuser=True))
    response = page.goto(path)
    assert response.status == 200
    page.wait_for_load_state("load")
    assert violations(page) == []


def test_the_admin_change_form_scripts_run(csp_page, login, user_factory):
    page = csp_page()
    login(page, user_factory(username="pia", is_staff=True, is_superuser=True))
    page.goto("/admin/accounts/user/add/")
    page.wait_for_selector("#user_form")
    # admin's own JS (static files) ran: the password-visibility and related-object widgets are set up
    assert page.evaluate("typeof django !== 'undefined' && typeof django.jQuery === 'function'")
    assert violations(page) == []


def test_the_api_docs_render_their_operations_with_no_violation(csp_page):
    page = csp_page()
    response = page.goto("/api/docs/")
    assert response.status == 200
    page.wait_for_selector(".swagger-ui .info .title")
    page.wait_for_selector(".swagger-ui .opblock")  # the schema was fetched and rendered by the nonce'd script
    assert page.locator(".swagger-ui .opblock").count() > 5
    assert violations(page) == []


def test_an_injected_inline_script_is_refused_and_reported(csp_page):
    """The recorder is not blind: markup injected into a page (what an XSS would do) does not run."""
    page = csp_page()
    page.goto("/accounts/login/")
    page.evaluate("""() => {
      const script = document.createElement("script");
      script.textContent = "window.__ran = true";
      document.body.append(script);
    }""")
    page.wait_for_selector("body")
    assert page.evaluate("window.__ran === undefined")
    assert any("script-src" in line for line in violations(page))
