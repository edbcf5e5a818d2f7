"""The chat UI in real headless Chromium against the real app (uvicorn) and the emulator."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from billing import money
from claudeapp.conversations import services
from claudeapp.conversations.models import Message
from claudeapp.jobs import runner
from claudeapp.jobs.models import Job

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ANSWER = "article.message.assistant"
# Records the streaming text's length at every DOM change, so growth is observed by the page
# itself rather than by sampling from here (which a busy machine could make miss every step).
RECORD_GROWTH = """() => {
  window.__lengths = [];
  new MutationObserver(() => {
    const text = document.querySelector("article.status-streaming .streaming-text");
    if (text) window.__lengths.push(text.textContent.length);
  }).observe(document.getElementById("messages"), {subtree: true, childList: true, characterData: true});
}"""

# Elements (outside the off-canvas sidebar) whose right edge passes a 390 px phone screen. (A mobile
# viewport widens itself to fit its content, so window.innerWidth is no yardstick.)
WIDER_THAN_VIEWPORT = """() => [...document.querySelectorAll("body *")]
  .filter(el => !el.closest("#sidebar") && el.getBoundingClientRect().right > 391)
  .map(el => el.tagName + "." + el.className + " " + Math.round(el.getBoundingClientRect().right))"""


@pytest.fixture
def alice(transactional_db):
    from claudeapp.accounts.models import User

    return User.objects.create(username="alice")  # signed in by cookie: no password hash to pay for


@pytest.fixture
def page(new_page, login, alice):
    page = new_page(viewport={"width": 1280, "height": 800})
    login(page, alice)
    return page


def send(page, text: str) -> None:
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")


def wait_for_answers(page, count: int, status: str = "complete") -> None:
    page.wait_for_selector(f"{ANSWER}.status-{status} >> nth={count - 1}")


def test_login_then_enter_sends_and_the_answer_streams_then_shows_model_tokens_and_cost(
    new_page, login, user_factory, emulator
):
    page = new_page(viewport={"width": 1280, "height": 800})
    login(page, user_factory(username="carol"), form=True)
    emulator.set_config(chunk_ms=40)
    assert page.locator("#composer").is_visible()
    page.evaluate(RECORD_GROWTH)
    send(page, "Tell me about tide pools [[words:60]]")
    page.wait_for_selector(f"{ANSWER}.status-streaming .streaming-text:not(:empty)")
    wait_for_answers(page, 1)
    lengths = [n for n in page.evaluate("window.__lengths") if n > 0]
    assert len(set(lengths)) >= 2, f"the answer did not grow while streaming: {lengths}"
    assert lengths == sorted(lengths)
    answer = page.locator(ANSWER).last
    assert re.fullmatch(r"claude-\w+-5-5", answer.locator(".meta .model").inner_text())
    assert re.fullmatch(r"\d+ in · \d+ out", answer.locator(".meta .tokens").inner_text())
    cost_micros = Message.objects.get(role="assistant").cost_micros
    assert cost_micros > 0  # billed, and shown by the one money rule (billing.money: micro-dollars under a cent)
    assert answer.locator(".meta .cost").inner_text() == money.usd(cost_micros)
    assert "/c/" in page.url  # the new conversation got its own address
    assert page.locator("#prompt").input_value() == ""


def test_shift_enter_makes_a_new_line_instead_of_sending(page):
    page.click("#prompt")
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    assert page.locator("#prompt").input_value() == "first line\nsecond line"
    assert page.locator("article.message").count() == 0
    page.keyboard.press("Enter")
    wait_for_answers(page, 1)
    assert page.locator("article.message.user .plain").inner_text() == "first line\nsecond line"


def test_stop_cancels_a_slow_stream_and_the_partial_answer_stays_marked_stopped(page):
    send(page, "[[chunk-ms:200]] [[words:400]] tell me a long story")
    page.wait_for_selector(f"{ANSWER}.status-streaming .streaming-text:not(:empty)")
    assert page.locator("#stop").is_visible()
    page.click("#stop")
    stopped = page.locator(f"{ANSWER}.status-truncated")
    stopped.wait_for()
    assert "Stopped." in stopped.locator(".meta").inner_text()
    assert stopped.locator(".streaming-text").inner_text()  # the partial answer stays
    assert page.locator("#stop").is_hidden()
    assert page.locator("#send").is_enabled()
    # The server kept what was streamed, marked as stopped, once it noticed the disconnect.
    deadline = time.monotonic() + 10
    while not Message.objects.filter(role="assistant", status="truncated").exists():
        assert time.monotonic() < deadline, "the stopped answer was never saved"
        time.sleep(0.1)
    page.reload()
    saved = page.locator(f"{ANSWER}.status-truncated")
    assert "Stopped before the end" in saved.locator(".meta").inner_text()
    assert saved.locator(".body").inner_text().strip()


def test_history_survives_a_reload(page, artifacts):
    send(page, "What is a tide pool?")
    wait_for_answers(page, 1)
    send(page, "Which animals live there? Answer with a short list.")
    wait_for_answers(page, 2)
    streamed = page.locator(f"{ANSWER} .body").all_inner_texts()
    page.reload()
    wait_for_answers(page, 2)
    assert page.locator("article.message.user .plain").all_inner_texts() == [
        "What is a tide pool?",
        "Which animals live there? Answer with a short list.",
    ]
    assert page.locator(f"{ANSWER} .body").all_inner_texts() == streamed
    assert page.locator(".conversation-list li.active").inner_text() == "What is a tide pool?"
    page.screenshot(path=str(artifacts / "chat.png"), full_page=True)


def test_an_xss_payload_in_the_prompt_and_in_the_stored_answer_is_inert(page):
    payload = '<img src=x onerror="window.__xss=1;alert(1)"><script>window.__xss=2</script>'
    send(page, f"{payload} [[reply:<img src=x onerror=window.__xss=3>]]")
    wait_for_answers(page, 1)
    page.reload()  # the stored versions, rendered by the server this time
    wait_for_answers(page, 1)
    assert "<img src=x" in page.locator("article.message.user").inner_text()  # shown as text
    assert page.locator("#messages img[onerror], #messages script").count() == 0
    assert page.evaluate("window.__xss") is None
    assert "onerror" not in page.title()


def test_someone_elses_conversation_is_a_404(page):
    from claudeapp.accounts.models import User

    bob = User.objects.create(username="bob")
    theirs = services.create_conversation(owner_id=bob.pk, title="bob's secret")
    response = page.goto(f"/c/{theirs.public_id}/")
    assert response.status == 404
    assert "bob's secret" not in page.content()
    assert page.request.get(f"/c/{theirs.public_id}/m/{theirs.public_id}/").status == 404


def test_on_a_phone_the_chat_fits_and_the_sidebar_opens_from_the_toggle(new_page, login, alice, artifacts):
    page = new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    login(page, alice)
    send(page, "Hello from a phone")
    wait_for_answers(page, 1)
    page.reload()  # the sidebar lists the new conversation
    wait_for_answers(page, 1)
    wide = page.evaluate(WIDER_THAN_VIEWPORT)
    assert not wide, f"sticks out sideways on a phone: {wide}"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    sidebar = page.locator("#sidebar")
    assert sidebar.bounding_box()["x"] + sidebar.bounding_box()["width"] <= 0  # off-canvas
    page.screenshot(path=str(artifacts / "chat-phone.png"), full_page=True)
    page.click("#toggle-sidebar")
    # Not wait_for_function: it compiles its predicate with new Function in the page, which the CSP refuses.
    deadline = time.monotonic() + 10
    while sidebar.bounding_box()["x"] < 0:
        assert time.monotonic() < deadline, "the sidebar never slid in"
        time.sleep(0.05)
    assert sidebar.get_by_text("Hello from a phone").is_visible()
    page.screenshot(path=str(artifacts / "chat-phone-sidebar.png"))


def test_a_background_answer_goes_live_on_the_jobs_page_and_lands_in_the_conversation(
    page, gateway_settings, artifacts
):
    send_in_background(page, "Summarise the life of a hermit crab")
    queued = page.locator(f"{ANSWER}.status-queued")
    queued.wait_for()
    jobs_page = page.context.new_page()
    jobs_page.goto("/my/jobs/")
    jobs_page.get_by_text("Queued", exact=True).wait_for()
    assert jobs_page.locator("tr.job .prompt").inner_text() == "Summarise the life of a hermit crab"

    run_job_like_a_worker(Job.objects.get().pk)

    jobs_page.locator("tr.job.status-succeeded").wait_for()  # no reload: the page polls
    assert jobs_page.locator("tr.job .cost").inner_text() == money.usd(Job.objects.get().cost_micros)
    jobs_page.screenshot(path=str(artifacts / "jobs.png"), full_page=True)
    wait_for_answers(page, 1)  # the conversation tab swapped the queued answer for the real one
    assert "hermit crab" in page.locator(f"{ANSWER} .body").inner_text()
    jobs_page.get_by_role("link", name="Conversation", exact=True).click()
    jobs_page.locator(f"{ANSWER}.status-complete").wait_for()


def run_job_like_a_worker(job_id) -> None:
    """What a Celery worker does (tests/jobs runs real ones), in a thread of its own: the sync
    gateway refuses to block inside Playwright's event loop, which runs in this thread."""

    def run() -> None:
        try:
            runner.run(job_id=job_id)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(run).result()


def send_in_background(page, text: str) -> None:
    page.check("#background")
    send(page, text)
