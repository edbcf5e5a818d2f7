"""`/anthropic/v1/messages` does its bookkeeping after the reply. Not streamed, it starts only once the reply is
out (api/fastpath.py `reply_out`, calls/run.py `complete(settle_after=...)`): a settlement started beside the
reply's last steps takes the interpreter from them on its database thread (docs/benchmarks.md, thirteenth
pass). Streamed, the body ends with upstream's stream, not with the bill (`stream(reply_first=True)`). In
process, through the lean handler as uvicorn calls it, against the emulator: the server's write of the reply's
last message is held for a while, and no bill lands during it; once it returns, the call is billed exactly
once before the request ends; meanwhile its write-ahead record carries upstream's figures. Streamed, complete
and cut: the body's last frame goes out while the settlement is held, the bill lands once before the request
ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from billing.models import Budget, LedgerEntry, Reservation
from claudeapp.calls import inflight
from claudeapp.requestlog import buffer
from claudeapp.requestlog.models import RequestLog
from tests.api.test_fastpath import raw_asgi_request

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("seeded_api", "aclose_loop_clients"),
]

BODY = {"model": "claude-haiku-5-5", "max_tokens": 40, "messages": [{"role": "user", "content": "Tell me a tide"}]}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _db(step):
    """`step` on a thread, its connection closed after: a connection left open on asgiref's thread would be
    found by a later test that has no database access."""

    def run():
        try:
            return step()
        finally:
            connection.close()

    return sync_to_async(run)()


async def _funded_key(partner_key_factory):
    """A partner key with the messages scope, and a global budget roomy enough for every call."""
    key = await _db(lambda: partner_key_factory(scopes=["messages"]))
    await _db(lambda: Budget.objects.create(scope="global", period="month", limit_micros=10**12))
    return key


def _request(key, body: dict, **options):
    """A raw ASGI POST of `body` to /anthropic/v1/messages with `key` (raw_asgi_request's options)."""
    headers = [(b"x-api-key", key.raw.encode()), (b"anthropic-version", b"2023-06-01")]
    return raw_asgi_request("/anthropic/v1/messages", body=json.dumps(body).encode(), headers=headers, **options)


def _hold_settlement(monkeypatch) -> tuple[threading.Event, threading.Event]:
    """The settlement's first step (upstream's figures on the in-flight record) waits on its database thread
    until the second event is set; the first is set once it is waiting there."""
    on_thread, go = threading.Event(), threading.Event()
    ended_sync = inflight.ended_sync

    def held(*args, **kwargs):
        on_thread.set()
        go.wait(30)
        return ended_sync(*args, **kwargs)

    monkeypatch.setattr(inflight, "ended_sync", held)
    return on_thread, go


async def test_the_settlement_starts_only_after_the_reply_went_out(partner_key_factory):
    from claudeapp.api.fastpath import PartnerCallHandler

    key = await _funded_key(partner_key_factory)
    billed_while_replying: list[int] = []
    records: list[dict] = []

    async def slow_last_write(message: dict) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body"):
            await asyncio.sleep(0.5)  # a settlement started beside the reply would land meanwhile
            billed_while_replying.append(await _db(LedgerEntry.objects.count))
            # A reader slow to take the reply does not leave the write-ahead record blind meanwhile: upstream's
            # figures are on it (0.1 s after the answer), so a process killed now is billed exactly by the reaper.
            records.extend(inflight.records())

    scope, receive, send, sent = _request(key, BODY, on_send=slow_last_write)
    await asyncio.wait_for(PartnerCallHandler()(scope, receive, send), 30)

    assert sent[0]["status"] == 200, sent
    reply = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert billed_while_replying == [0]
    (record,) = records
    assert record["msg"] == reply["id"] and record.get("final")
    entry = await _db(LedgerEntry.objects.get)  # billed before the request ended, exactly once
    assert entry.upstream_message_id == reply["id"]
    usage = reply["usage"]
    assert (entry.input_tokens, entry.output_tokens) == (usage["input_tokens"], usage["output_tokens"])
    assert not await _db(Reservation.objects.exists)
    # The call's log line, written now rather than by the buffer's thread during the next test's flush.
    await _db(buffer.flush)
    (row,) = await _db(lambda: list(RequestLog.objects.filter(principal_id=key.pk)))
    assert (row.status, row.cost_micros) == ("complete", entry.cost_micros)


@pytest.mark.parametrize(("ending", "marker"), [("complete", ""), ("cut", " [[fault:stream-error-after:4]]")])
async def test_a_streamed_body_ends_with_upstreams_stream_not_with_its_bill(
    partner_key_factory, monkeypatch, ending, marker
):
    """Streamed: the body's last frame goes out once upstream's stream ended, while the settlement is still
    held (its first step waits on the database thread); the request ends only after the call is billed, once."""
    from claudeapp.api.fastpath import PartnerCallHandler

    key = await _funded_key(partner_key_factory)
    _, settle = _hold_settlement(monkeypatch)
    body_ended = asyncio.Event()

    async def on_send(message: dict) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body"):
            body_ended.set()

    content = "Tell me a tide" + marker
    body = {**BODY, "stream": True, "messages": [{"role": "user", "content": content}]}
    scope, receive, send, sent = _request(key, body, on_send=on_send)
    request = asyncio.ensure_future(PartnerCallHandler()(scope, receive, send))
    try:
        await asyncio.wait_for(body_ended.wait(), 5)  # before this change: only once the settlement landed
        await asyncio.sleep(0.1)
        assert not request.done()  # the request waits for its bill
        assert await _db(LedgerEntry.objects.count) == 0
    finally:
        settle.set()
    await asyncio.wait_for(request, 30)

    assert sent[0]["status"] == 200
    frames = b"".join(m.get("body", b"") for m in sent[1:]).decode()
    last_event = frames.strip().rsplit("\n\n", 1)[-1].split("\n", 1)[0]
    assert last_event == ("event: error" if ending == "cut" else "event: message_stop"), frames
    entry = await _db(LedgerEntry.objects.get)  # billed before the request ended, exactly once
    assert (entry.input_tokens, entry.output_tokens) != (0, 0)
    assert not await _db(Reservation.objects.exists)
    await _db(buffer.flush)
    (row,) = await _db(lambda: list(RequestLog.objects.filter(principal_id=key.pk)))
    assert row.cost_micros == entry.cost_micros


@pytest.mark.parametrize("stream", [False, True], ids=["reply", "streamed"])
async def test_a_reader_leaving_during_the_last_write_still_has_the_call_billed_before_the_request_ends(
    partner_key_factory, monkeypatch, stream
):
    """The reader goes while the server writes the reply's last message (after upstream answered, before the
    write returned), and the settlement is held until after it left: the settlement is neither lost nor left
    to the reaper, and the request ends only once the call is billed, once, its hold gone."""
    from claudeapp.api.fastpath import PartnerCallHandler

    key = await _funded_key(partner_key_factory)
    _, settle = _hold_settlement(monkeypatch)

    async def slow_last_write(message: dict) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body"):
            await asyncio.sleep(2)  # the reader leaves 0.5 s into this write

    body = {**BODY, "stream": stream}
    scope, receive, send, sent = _request(key, body, disconnect_after=0.5, on_send=slow_last_write)
    reader_gone = asyncio.Event()

    async def leaves() -> dict:
        message = await receive()
        if message["type"] == "http.disconnect":
            reader_gone.set()
            asyncio.get_running_loop().call_later(0.3, settle.set)  # the settlement goes on after the reader left
        return message

    await asyncio.wait_for(PartnerCallHandler()(scope, leaves, send), 30)

    assert reader_gone.is_set()
    assert sent[0]["status"] == 200 and not sent[-1].get("more_body")  # the last write was under way
    entry = await _db(LedgerEntry.objects.get)  # already there when the request ended
    assert entry.output_tokens > 0
    assert not await _db(Reservation.objects.exists)
    assert not [r for r in inflight.records() if r.get("pid") == str(key.pk)]


async def test_a_streamed_settlement_under_way_at_shutdown_is_billed_once_not_again_at_its_bound(
    partner_key_factory, monkeypatch
):
    """A process shutting down cancels the tasks it has left (asyncio.run's cleanup). A stream whose ending is
    being recorded (its settlement waiting on its database thread) is billed by that settlement alone, not a
    second time at its bound as a stream cut by the shutdown would be."""
    from claudeapp.accounts.principals import Principal
    from claudeapp.calls import run

    key = await _funded_key(partner_key_factory)
    on_thread, settle = _hold_settlement(monkeypatch)
    principal = Principal(kind="partner_key", id=key.pk, user_id=key.owner_id)
    spec = run.CallSpec(messages=BODY["messages"], max_tokens=40)
    admission, spec = await run.admit(principal=principal, requested_model=BODY["model"], spec=spec, streamed=True)
    stream = run.stream(admission=admission, spec=spec, raw_events=True, reply_first=True)
    async with contextlib.aclosing(stream) as events:
        (done,) = [event async for event in events if isinstance(event, run.Completed)]
    assert done.entry is None and done.settling is not None  # the stream ended before its bill
    assert await asyncio.to_thread(on_thread.wait, 10)
    done.settling.cancel()  # the shutdown, while the settlement is on its thread
    await asyncio.sleep(0.2)
    settle.set()
    with contextlib.suppress(asyncio.CancelledError):
        await done.settling
    deadline = time.monotonic() + 5
    while not await _db(LedgerEntry.objects.exists) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    (entry,) = await _db(lambda: list(LedgerEntry.objects.all()))
    assert entry.upstream_message_id and entry.output_tokens > 0  # upstream's figures, not the bound's
    assert not await _db(Reservation.objects.exists)
