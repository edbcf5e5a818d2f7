"""The ledger against what upstream charged: surface x content x ending, over real HTTP.

Each cell runs one call through the live gateway (uvicorn) against the emulator, waits until the
call's bookkeeping has landed (no budget hold left), and compares the sum of the gateway's ledger
with the sum of the emulator's own charges (its `/_emulator/ledger`) for the same test:

- EXACT endings (complete, client disconnect, 529 then fallback): upstream reported usage, so the
  ledger equals it to the token (input, output, cache write, cache read).
- BOUND endings (upstream cut, mid-stream error): upstream never reported output; the ledger holds
  the exact input from message_start and an output bound that is never below the charge.

Cells that do not exist are listed, not skipped silently: the chat and conversation turns take text
only (attachments come with the chat issue), and /api/v1/messages has no tools or thinking fields.
Jobs and batches are reconciled in tests/jobs (their calls are not streamed).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from billing.models import Budget, LedgerEntry, Reservation
from claudeapp.conversations import services
from claudeapp.conversations.models import Message
from tests.fixtures.contents import user_content, with_content
from tests.fixtures.reconcile import ledger_usage, totals

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "claude-haiku-5-5"
FALLBACK_FROM = "claude-sonnet-5-5"  # its chain falls back to another model (seeded model map)


@dataclass(frozen=True)
class Ending:
    name: str
    marker: str  # emulator fault/pace markers put in the prompt
    exact: bool
    disconnect_after: int | None = None  # deltas read before the client hangs up
    model: str = MODEL


ENDINGS = {
    "complete": Ending("complete", "", exact=True),
    "disconnect": Ending("disconnect", "[[chunk-ms:15]]", exact=True, disconnect_after=2),
    "cut": Ending("cut", "[[fault:stream-cut:4]]", exact=False),
    "error": Ending("error", "[[fault:stream-error-after:4]]", exact=False),
    "fallback": Ending("fallback", f"[[fault:529@{FALLBACK_FROM}]]", exact=True, model=FALLBACK_FROM),
    # Cut right after message_start, before any output reached the reader: retried unseen; upstream
    # billed the cut attempt's prompt (exact) and what it began (a tool block's name, thinking: bound).
    "retry-after-cut": Ending("retry-after-cut", "[[fault:stream-cut:0:1]]", exact=False),
}
CONTENTS = ("text", "document", "image", "tools", "thinking")
SURFACES = ("anthropic", "api_stateless", "api_conversation", "chat")
SUPPORTED = {
    "anthropic": set(CONTENTS),
    "api_stateless": {"text", "document", "image"},
    "api_conversation": {"text"},
    "chat": {"text"},
}
CELLS = [
    pytest.param(surface, content, ending, id=f"{surface}-{content}-{ending}")
    for surface in SURFACES
    for content in CONTENTS
    if content in SUPPORTED[surface]
    for ending in ENDINGS
]


def anthropic_body(content: str, ending: Ending, *, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": ending.model,
        "max_tokens": 600,
        "stream": stream,
        "messages": [{"role": "user", "content": user_content(content, ending.marker)}],
    }
    return with_content(body, content)


# --- driving one call per surface ------------------------------------------------------------


def read_stream(response: httpx.Response, disconnect_after: int | None) -> None:
    """Read SSE lines; with `disconnect_after`, hang up after that many delta events."""
    deltas = 0
    for line in response.iter_lines():
        if line.startswith("event: content_block_delta") or line == "event: delta":
            deltas += 1
            if disconnect_after is not None and deltas >= disconnect_after:
                return  # leaving the `with` closes the connection mid-answer


def call_anthropic(server, key, content: str, ending: Ending) -> None:
    body = anthropic_body(content, ending, stream=True)
    headers = {"x-api-key": key.raw, "anthropic-version": "2023-06-01"}
    with httpx.stream("POST", f"{server.url}/anthropic/v1/messages", json=body, headers=headers, timeout=30) as r:
        assert r.status_code == 200, r.read()
        read_stream(r, ending.disconnect_after)


def call_api_stateless(server, key, content: str, ending: Ending) -> None:
    body = {
        "model": ending.model,
        "max_tokens": 600,
        "stream": True,
        "messages": [{"role": "user", "content": user_content(content, ending.marker)}],
    }
    headers = {"authorization": f"Bearer {key.raw}"}
    with httpx.stream("POST", f"{server.url}/api/v1/messages", json=body, headers=headers, timeout=30) as r:
        assert r.status_code == 200, r.read()
        read_stream(r, ending.disconnect_after)


def call_api_conversation(server, key, content: str, ending: Ending) -> None:
    headers = {"authorization": f"Bearer {key.raw}"}
    created = httpx.post(f"{server.url}/api/v1/conversations", json={"title": "tide pools"}, headers=headers)
    assert created.status_code == 201, created.text
    body = {
        "conversation_id": created.json()["id"],
        "content": user_content(content, ending.marker),
        "model": ending.model,
        "max_tokens": 600,
        "stream": True,
    }
    with httpx.stream("POST", f"{server.url}/api/v1/messages", json=body, headers=headers, timeout=30) as r:
        assert r.status_code == 200, r.read()
        read_stream(r, ending.disconnect_after)


def call_chat(server, user, content: str, ending: Ending) -> None:
    conversation = services.create_conversation(owner_id=user.pk)
    browser = Client()
    browser.force_login(user)
    token = "a" * 32
    cookies = {"sessionid": browser.cookies["sessionid"].value, "csrftoken": token}
    form = {"content": user_content(content, ending.marker), "model": ending.model}
    headers = {"x-csrftoken": token, "referer": f"{server.url}/"}
    url = f"{server.url}/c/{conversation.public_id}/send"
    with httpx.stream("POST", url, data=form, cookies=cookies, headers=headers, timeout=30) as r:
        assert r.status_code == 200, r.read()
        read_stream(r, ending.disconnect_after)


# --- reconciling -----------------------------------------------------------------------------


def settled_ledger(timeout: float = 20.0) -> list[LedgerEntry]:
    """The ledger once every hold of the call is settled and nothing new lands for a moment."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        entries = list(LedgerEntry.objects.all())
        if entries and not Reservation.objects.exists() and len(entries) == last:
            return entries
        last = len(entries) if not Reservation.objects.exists() else -1
        time.sleep(0.2)
    raise AssertionError(f"the call never settled: {list(Reservation.objects.values())}")


def charged(emulator, timeout: float = 10.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    charges = emulator.charges()
    while time.monotonic() < deadline:  # a disconnect's charge lands once the emulator notices
        time.sleep(0.2)
        again = emulator.charges()
        if len(again) == len(charges) and charges:
            break
        charges = again
    return totals([c["usage"] for c in charges])


@pytest.fixture
def roomy_budget(db):
    """A budget covering everyone, so every call's hold is a row we can watch settle."""
    return Budget.objects.create(scope="global", period="month", limit_micros=10**12)


@pytest.fixture
def key(partner_key_factory):
    return partner_key_factory(scopes=["messages", "conversations", "usage"])


@pytest.fixture
def chat_person(db):
    return get_user_model().objects.create_user("reconcile", password="x")


@pytest.mark.parametrize(("surface", "content", "ending_name"), CELLS)
def test_the_ledger_matches_what_upstream_charged(
    live_gateway, emulator, roomy_budget, key, chat_person, surface, content, ending_name
):
    ending = ENDINGS[ending_name]
    emulator.clear_charges()
    if surface == "chat":
        call_chat(live_gateway, chat_person, content, ending)
    else:
        {"anthropic": call_anthropic, "api_stateless": call_api_stateless, "api_conversation": call_api_conversation}[
            surface
        ](live_gateway, key, content, ending)

    billed = ledger_usage(settled_ledger())
    upstream = charged(emulator)
    assert upstream["input_tokens"] > 0, "the emulator charged nothing: the cell did not run"
    if ending.disconnect_after is not None:  # the gateway read upstream to the end without the reader
        assert {c["ending"] for c in emulator.charges()} == {"complete"}, emulator.charges()
    if ending.exact:
        assert billed == upstream, json.dumps({"ledger": billed, "emulator": upstream})
    else:
        assert billed["input_tokens"] == upstream["input_tokens"], (billed, upstream)
        assert billed["output_tokens"] >= upstream["output_tokens"], (billed, upstream)
        assert billed["cache_read_input_tokens"] == upstream["cache_read_input_tokens"]
    assert not Reservation.objects.exists()
    assert Budget.objects.get(pk=roomy_budget.pk).reserved_micros == 0
    if surface in ("chat", "api_conversation"):  # the saved answer carries the call's bill
        answer = Message.objects.get(role=Message.Role.ASSISTANT)
        assert answer.cost_micros == sum(e.cost_micros for e in LedgerEntry.objects.filter(kind="message"))
        if ending_name == "disconnect":
            assert (answer.status, answer.error_type) == (Message.Status.TRUNCATED, "stopped")


NON_STREAMED = {
    "complete": Ending("complete", "", exact=True),
    "disconnect": Ending("disconnect", "[[latency:800]]", exact=True),
    "fallback": Ending("fallback", f"[[fault:529@{FALLBACK_FROM}]]", exact=True, model=FALLBACK_FROM),
    "body-cut": Ending("body-cut", "[[fault:stream-cut:1:1]]", exact=False),
}


@pytest.mark.parametrize("content", CONTENTS)
@pytest.mark.parametrize("ending_name", NON_STREAMED)
def test_non_streamed_calls_match_too(live_gateway, emulator, roomy_budget, key, content, ending_name):
    """JSON answers on /anthropic: complete, a client that gives up before the answer (the call goes
    on and is billed), a 529 then fallback, and a 200 whose body was cut (upstream produced a whole
    message we never saw: billed at its bound, input bound and max_tokens, then retried)."""
    ending = NON_STREAMED[ending_name]
    emulator.clear_charges()
    body = anthropic_body(content, ending, stream=False)
    headers = {"x-api-key": key.raw, "anthropic-version": "2023-06-01"}
    try:
        r = httpx.post(f"{live_gateway.url}/anthropic/v1/messages", json=body, headers=headers,
                       timeout=0.3 if ending_name == "disconnect" else 30)  # fmt: skip
        assert r.status_code == 200, r.text
    except httpx.ReadTimeout:
        assert ending_name == "disconnect"
    billed = ledger_usage(settled_ledger())
    upstream = charged(emulator)
    assert upstream["input_tokens"] > 0
    if ending.exact:
        assert billed == upstream, json.dumps({"ledger": billed, "emulator": upstream})
    else:
        assert billed["input_tokens"] >= upstream["input_tokens"], (billed, upstream)
        assert billed["output_tokens"] >= upstream["output_tokens"], (billed, upstream)


def test_a_budget_race_with_documents_never_passes_the_limit(live_gateway, emulator, key):
    """Eight parallel calls each carrying a 108k-character document, against a budget sized for 1.6.

    The upstream holds each answer 2 s ([[latency]]), so every call is admitted while the first one's
    hold stands: without it a slow client thread could arrive after the first call settled at its
    actual cost (about half its worst case) and fairly get the room that freed."""
    import concurrent.futures

    from billing import prices
    from billing.costs import worst_case_micros

    one_call = worst_case_micros(price=prices.current_price(model_id=MODEL), input_tokens=27_100, max_tokens=64)
    budget = Budget.objects.create(scope="partner_key", scope_id=key.pk, period="day", limit_micros=int(one_call * 1.6))
    body = {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x" * 108_000}},
                    {"type": "text", "text": "Summarise. [[latency:2000]]"},
                ],
            }
        ],
    }
    headers = {"x-api-key": key.raw, "anthropic-version": "2023-06-01"}

    def call(_: int) -> int:
        return httpx.post(
            f"{live_gateway.url}/anthropic/v1/messages", json=body, headers=headers, timeout=30
        ).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(call, range(8)))
    assert statuses.count(200) == 1 and statuses.count(402) == 7, statuses
    entries = settled_ledger()  # the answer went out before its settlement
    budget.refresh_from_db()
    assert budget.spent_micros <= budget.limit_micros and budget.reserved_micros == 0
    assert ledger_usage(entries) == charged(emulator)
