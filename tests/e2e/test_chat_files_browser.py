"""Attachments, instructions, search and export in headless Chromium against the real app (uvicorn) and the
emulator: one signed-in page walks every flow, under the Content-Security-Policy (no violation allowed)."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from pathlib import Path

import pytest

from claudeapp.attachments.models import Attachment
from claudeapp.conversations.models import Conversation, Message
from tests.fixtures import files

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ANSWER = "article.message.assistant"
NATURAL_WIDTHS = "() => [...document.querySelectorAll('.message.user .attachments img')].map(i => i.naturalWidth)"
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""
# A file handed to the page the way a drop or a paste hands it: a DataTransfer carrying a File.
DISPATCH_FILE = """([kind, name, type, text]) => {
  const data = new DataTransfer();
  data.items.add(new File([text], name, { type }));
  const target = kind === "drop" ? document.getElementById("chat") : document.getElementById("prompt");
  const event = kind === "drop"
    ? new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true })
    : new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true });
  target.dispatchEvent(event);
}"""


@pytest.fixture
def watched(browser, seeded_web, login, user_factory):
    """A signed-in page whose CSP violations, uploads and dialogs are recorded."""
    context = browser.new_context(
        base_url=seeded_web.url, viewport={"width": 1280, "height": 800}, accept_downloads=True
    )
    context.set_default_timeout(10_000)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.reports, page.uploads, page.dialogs = [], [], []
    page.on("console", lambda m: "Content Security Policy" in m.text and page.reports.append(m.text))
    page.on("request", lambda r: r.method == "POST" and r.url.endswith("/attachments/") and page.uploads.append(r))
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    user = user_factory(username="fiona")
    login(page, user)
    yield page, user
    context.close()


def _eventually(check, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def violations(page) -> list[str]:
    return page.evaluate("window.__csp") + page.reports


def downloaded(page, selector: str) -> bytes:
    with page.expect_download() as download:
        page.click(selector)
    return Path(download.value.path()).read_bytes()


def test_files_instructions_search_and_export_in_one_session(
    watched, browser, seeded_web, login, user_factory, artifacts
):
    page, user = watched

    # Instructions: a default on the settings page, with its token count following the typing.
    page.goto("/settings/")
    page.fill("#default-instructions", "Answer like a harbour pilot.")
    assert page.inner_text("#default-instructions-tokens") == "10 tokens"  # 28 bytes / 3, rounded up
    page.click("text=Save")
    page.wait_for_selector("text=Saved.")
    page.screenshot(path=str(artifacts / "chat-settings.png"), full_page=True)

    # Attachments: the file button, a drop and a paste; the estimate counts them before sending.
    page.goto("/")
    page.set_input_files(
        "#file-input", files=[{"name": "harbour.png", "mimeType": "image/png", "buffer": files.png(80, 60)}]
    )
    page.evaluate(DISPATCH_FILE, ["drop", "tides.csv", "text/csv", "hour,height\n6,4.2\n"])
    page.evaluate(DISPATCH_FILE, ["paste", "notes.md", "text/markdown", "# Buoys\nred to port"])
    page.wait_for_selector(".attachment-chip >> nth=2")
    page.wait_for_selector(".attachment-chip.uploading", state="detached")  # (no wait_for_function: it evals)
    assert page.locator(".attachment-chip").count() == 3
    page.fill("#prompt", "What do these say about the harbour?")
    page.wait_for_selector("#estimate:has-text('tokens in · up to $')")
    assert re.fullmatch(r"≈[\d,]+ tokens in · up to \$\d+\.\d+", page.inner_text("#estimate"))

    # Refused before any upload: an unsupported kind and a file over the size limit.
    uploads = len(page.uploads)
    page.set_input_files(
        "#file-input", files=[{"name": "tool.exe", "mimeType": "application/x-msdownload", "buffer": b"MZ"}]
    )
    page.wait_for_selector("#hint.error >> text=tool.exe: attach images")
    big = b"x" * (5 * 1024 * 1024 + 1)
    page.set_input_files("#file-input", files=[{"name": "huge.txt", "mimeType": "text/plain", "buffer": big}])
    page.wait_for_selector("#hint.error >> text=huge.txt is 5.0 MB; files are limited to 5.0")
    assert len(page.uploads) == uploads
    page.screenshot(path=str(artifacts / "chat-attachments-composer.png"))

    page.press("#prompt", "Enter")
    page.wait_for_selector(f"{ANSWER}.status-complete")
    conversation = Conversation.objects.get(owner=user)
    assert conversation.system_prompt == "Answer like a harbour pilot."  # the default started it
    question = Message.objects.get(conversation=conversation, role="user")
    assert sorted(question.attachments.values_list("filename", flat=True)) == ["harbour.png", "notes.md", "tides.csv"]
    assert Message.objects.get(conversation=conversation, role="assistant").input_tokens >= 1_200  # the image

    page.reload()  # the server renders the files with the message; the image loads from its owner-only URL
    page.locator(".message.user .attachments img").first.wait_for()
    assert _eventually(lambda: page.evaluate(NATURAL_WIDTHS) == [80])
    page.screenshot(path=str(artifacts / "chat-attachments.png"), full_page=True)

    # The conversation's own instructions: edited in place, token count shown, sent as `system` next turn.
    page.click("#instructions-panel summary")
    page.fill("#instructions", "Answer in one sentence.")
    page.click("text=Save instructions")
    page.wait_for_selector("#instructions-status >> text=Saved · 8 tokens")
    conversation.refresh_from_db()
    assert conversation.system_prompt == "Answer in one sentence."
    page.click("#instructions-panel summary")

    # Search from the sidebar; a hit opens the conversation at the message.
    page.fill(".sidebar-search input", "harbour")
    page.press(".sidebar-search input", "Enter")
    page.wait_for_selector(".search-hit mark")
    page.screenshot(path=str(artifacts / "chat-search.png"), full_page=True)
    page.click(".search-hit a[href*='#m-'] >> nth=0")  # a message hit (the title matches too)
    page.wait_for_url(re.compile(rf"/c/{conversation.public_id}/\?show=[^#]+#m-"))
    assert page.evaluate("document.querySelector(':target')?.classList.contains('message')")

    # Export: this conversation as Markdown and JSON, everything as a zip from the settings page.
    markdown = downloaded(page, ".export-links >> text=Markdown").decode()
    assert markdown.startswith("# What do these say about the harbour?") and "Attached: harbour.png" in markdown
    exported = json.loads(downloaded(page, ".export-links >> text=JSON"))
    answer = exported["messages"][-1]
    assert answer["model"] and answer["output_tokens"] > 0 and float(answer["cost_usd"]) > 0
    page.goto("/settings/")
    archive = zipfile.ZipFile(io.BytesIO(downloaded(page, "#export-all")))
    assert "account.json" in archive.namelist() and any(n.endswith("-harbour.png") for n in archive.namelist())

    assert violations(page) == [] and page.dialogs == []

    # Someone else's attachment URL is a 404.
    image = Attachment.objects.get(filename="harbour.png")
    other = browser.new_context(base_url=seeded_web.url)
    try:
        stranger = other.new_page()
        login(stranger, user_factory(username="gus"))
        assert stranger.goto(f"/attachments/{image.public_id}/").status == 404
    finally:
        other.close()
