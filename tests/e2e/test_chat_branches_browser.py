"""Edit, regenerate and versions; the sidebar, copy buttons, thinking, shortcuts, the dark theme, the budget
banner, aliases in the picker and accessibility (axe-core), in Debian's Chromium against the real app.

Each test is one flow of several steps on one page, so the whole file costs a few page loads. The
CSP-recording context checks that none of it needs an inline script or style; axe-core (a test-only
file, tests/e2e/vendor/axe.min.js, never served by the app) runs in a context of its own where the
page's CSP lets the injected script run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from billing.models import Budget
from claudeapp.conversations.models import Conversation, Message

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ANSWER = "article.message.assistant"
QUESTION = "article.message.user"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => v.id + " (" + v.impact + "): " + v.nodes.map(n => n.target.join(" ")).slice(0, 5).join(", "));
}"""


@pytest.fixture
def alice(transactional_db):
    from claudeapp.accounts.models import User

    return User.objects.create(username="alice")


@pytest.fixture
def pages(browser, seeded_web, login, alice) -> Iterator[Callable[..., Any]]:
    """Signed-in pages in fresh contexts: CSP violations recorded (unless `axe`), dialogs fail the test."""
    contexts, dialogs = [], []

    def make(*, axe: bool = False, **options: Any) -> Any:
        options.setdefault("viewport", {"width": 1280, "height": 860})
        context = browser.new_context(base_url=seeded_web.url, bypass_csp=axe, **options)
        context.set_default_timeout(10_000)
        context.add_init_script(RECORD_VIOLATIONS)
        contexts.append(context)
        page = context.new_page()
        page.reports = []
        page.on("console", lambda m: "Content Security Policy" in m.text and page.reports.append(m.text))
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        login(page, alice)
        return page

    yield make
    for context in contexts:
        context.close()
    assert not dialogs, f"a browser dialog fired: {dialogs}"


def csp_violations(page: Any) -> list[str]:
    return page.evaluate("window.__csp") + page.reports


def axe_violations(page: Any) -> list[str]:
    page.add_script_tag(path=str(AXE))
    return page.evaluate(RUN_AXE)


def send(page: Any, text: str) -> None:
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")


def wait_until(check: Callable[[], bool], what: str) -> None:
    """Polls from here: wait_for_function compiles its predicate with new Function, which the CSP refuses."""
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def answers(page: Any) -> list[str]:
    return [t.strip() for t in page.locator(f"{ANSWER} .body").all_inner_texts()]


def questions(page: Any) -> list[str]:
    return page.locator(f"{QUESTION} .plain").all_inner_texts()


def test_edit_regenerate_and_switch_versions(pages, artifacts):
    page = pages()
    assert page.locator(".conversation-list").inner_text().strip() == "No conversations yet."
    send(page, "Name a tide pool animal [[reply:A sea star.]]")
    page.locator(f"{ANSWER}.status-complete").wait_for()
    # The new conversation is in the sidebar at once, titled, without a reload.
    active = page.locator(".conversation-list li.active a")
    wait_until(lambda: active.inner_text() == "Name a tide pool animal [[reply:A sea star.]]", "sidebar title")
    assert "No conversations yet" not in page.locator(".conversation-list").inner_text()

    send(page, "And another? [[reply:A hermit crab.]]")
    page.locator(f"{ANSWER}.status-complete >> nth=1").wait_for()
    assert answers(page) == ["A sea star.", "A hermit crab."]

    # Edit the second question: a new branch; the old one is one click away ("< 2/2 >").
    second = page.locator(QUESTION).nth(1)
    second.get_by_role("button", name="Edit").click()
    second.locator("textarea").fill("And a fish? [[reply:A blenny.]]")
    second.get_by_role("button", name="Save and send").click()
    page.locator(f"{QUESTION} .branch-count").wait_for()
    assert questions(page) == ["Name a tide pool animal [[reply:A sea star.]]", "And a fish? [[reply:A blenny.]]"]
    assert answers(page) == ["A sea star.", "A blenny."]
    assert page.locator(f"{QUESTION} .branch-count").inner_text() == "2/2"
    page.get_by_role("button", name="Previous version").click()
    wait_until(lambda: answers(page) == ["A sea star.", "A hermit crab."], "the first branch came back")
    assert page.locator(f"{QUESTION} .branch-count").inner_text() == "1/2"
    page.get_by_role("button", name="Next version").click()
    wait_until(lambda: answers(page) == ["A sea star.", "A blenny."], "the edited branch came back")

    # Regenerate the last answer with the same model, then with another one picked in the dialog.
    last = page.locator(ANSWER).last
    model_before = last.locator(".meta .model").inner_text()
    last.get_by_role("button", name="Regenerate", exact=True).click()
    page.locator(f"{ANSWER} .branch-count").wait_for()
    assert page.locator(f"{ANSWER} .branch-count").inner_text() == "2/2"
    assert page.locator(ANSWER).last.locator(".meta .model").inner_text() == model_before
    page.locator(ANSWER).last.get_by_role("button", name="Regenerate with…").click()
    dialog = page.locator("dialog.regenerate-dialog")
    other = "claude-opus-5-5" if model_before != "claude-opus-5-5" else "claude-haiku-5-5"
    dialog.locator("select").select_option(other)
    dialog.get_by_role("button", name="Regenerate").click()
    wait_until(lambda: page.locator(f"{ANSWER} .branch-count").inner_text() == "3/3", "a third version")
    page.locator(f"{ANSWER}.status-complete >> nth=1").wait_for()
    assert page.locator(ANSWER).last.locator(".meta .model").inner_text() == other
    page.screenshot(path=str(artifacts / "chat-branches.png"), full_page=True)

    # History keeps every branch: 5 answers (2, the edited question's, 2 regenerations), each billed once.
    conversation = Conversation.objects.get()
    assert Message.objects.filter(conversation=conversation, role="assistant").count() == 5
    assert Message.objects.filter(conversation=conversation, role="user").count() == 3
    page.reload()
    assert page.locator(f"{ANSWER} .branch-count").inner_text() == "3/3"  # the page opens where it was left
    assert csp_violations(page) == []


def test_copy_thinking_and_shortcuts(pages, artifacts):
    page = pages()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    send(page, "Show code [[reply:Run this:\n\n```\nprint('tide')\n```\n\nThat is all.]]")
    page.locator(f"{ANSWER}.status-complete").wait_for()
    page.locator(".copy-code").click()
    assert page.evaluate("navigator.clipboard.readText()") == "print('tide')"
    page.locator(ANSWER).get_by_role("button", name="Copy", exact=True).click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("Run this:") and "print('tide')" in copied and copied.endswith("That is all.")
    assert "Copy" not in copied  # the code button's label is CSS, not text

    page.check("#think")
    send(page, "Think about tides first [[reply:Twice a day.]]")
    page.locator(f"{ANSWER}.status-complete >> nth=1").wait_for()
    thinking = page.locator(f"{ANSWER} details.thinking").last
    assert thinking.get_attribute("open") is None  # folded
    assert not thinking.locator(".thinking-text").is_visible()
    thinking.locator("summary").click()
    assert thinking.locator(".thinking-text").inner_text().strip()
    assert Message.objects.filter(role="assistant").exclude(thinking="").count() == 1
    page.uncheck("#think")

    page.locator("body").click(position={"x": 640, "y": 60})  # out of the message box
    page.keyboard.press("?")
    shortcuts = page.locator("dialog#shortcuts")
    shortcuts.wait_for()
    assert "New chat" in shortcuts.inner_text() and "Search conversations" in shortcuts.inner_text()
    page.screenshot(path=str(artifacts / "chat-shortcuts.png"))
    page.keyboard.press("Escape")
    assert not shortcuts.is_visible()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "prompt"
    page.keyboard.press("Control+K")
    assert page.evaluate("document.activeElement.type") == "search"
    page.keyboard.press("Shift+Escape")
    assert page.evaluate("document.activeElement.id") == "prompt"
    first_chat = page.url
    page.keyboard.press("Control+Shift+O")
    page.wait_for_url(lambda url: "/c/" in url and url != first_chat)
    assert page.locator("#messages article").count() == 0  # a new, empty chat
    send(page, "[[chunk-ms:200]] [[words:300]] a long story")  # (markers count from every question of a chat)
    page.locator(f"{ANSWER}.status-streaming .streaming-text:not(:empty)").wait_for()
    page.keyboard.press("Escape")  # stops the answer being written
    page.locator(f"{ANSWER}.status-truncated").wait_for()
    assert csp_violations(page) == []


def test_dark_theme_follows_the_system_and_axe_finds_nothing_serious(pages, artifacts):
    page = pages(axe=True, color_scheme="dark")
    send(page, "Hello in the dark [[reply:Hello. Here is `code` and a [link](https://example.com).]]")
    page.locator(f"{ANSWER}.status-complete").wait_for()
    send(page, "Again [[reply:Once more.]]")
    page.locator(f"{ANSWER}.status-complete >> nth=1").wait_for()
    page.locator(ANSWER).last.get_by_role("button", name="Regenerate", exact=True).click()
    page.locator(f"{ANSWER} .branch-count").wait_for()
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(28, 27, 26)", background
    page.screenshot(path=str(artifacts / "chat-dark.png"), full_page=True)
    assert axe_violations(page) == []

    light = pages(axe=True, color_scheme="light")
    light.goto(page.url)
    light.locator(f"{ANSWER}.status-complete >> nth=1").wait_for()
    assert light.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(250, 249, 247)"
    light.keyboard.press("?")
    light.locator("dialog#shortcuts").wait_for()
    assert axe_violations(light) == []  # the page with the shortcuts dialog open
    light.keyboard.press("Escape")
    light.goto("/usage/")
    assert axe_violations(light) == []


def test_budget_banner_at_80_and_95_percent_and_aliases_in_the_picker(pages, alice, artifacts):
    budget = Budget.objects.create(scope="user", scope_id=alice.pk, period="month", limit_micros=1_000_000,
                                   spent_micros=790_000)  # fmt: skip
    page = pages()
    assert page.locator("#budget-banner").is_hidden()  # 79%: nothing yet

    aliases = page.locator("#model optgroup[label=Aliases] option")
    assert aliases.count() >= 1
    alias, label = aliases.first.get_attribute("value"), aliases.first.inner_text()
    assert "→" in label
    page.select_option("#model", alias)
    Budget.objects.filter(pk=budget.pk).update(spent_micros=850_000)
    send(page, "Through an alias [[reply:Yes.]]")
    page.locator(f"{ANSWER}.status-complete").wait_for()
    banner = page.locator("#budget-banner")
    wait_until(lambda: banner.is_visible(), "the banner after the answer")  # asked again after each answer
    assert "budget-warning" in banner.get_attribute("class")
    assert "of your monthly budget is spent" in banner.inner_text()
    answer = Message.objects.get(role="assistant")
    assert answer.model_requested == alias and answer.model_used  # the alias was resolved to its model

    Budget.objects.filter(pk=budget.pk).update(spent_micros=960_000)
    page.reload()
    assert "budget-critical" in banner.get_attribute("class")
    assert "96% of your monthly budget is spent" in banner.inner_text()
    page.screenshot(path=str(artifacts / "chat-budget-banner.png"))
    assert csp_violations(page) == []
