"""The write-ahead record of calls in flight (claudeapp/calls/inflight.py) through the live gateway: on
every surface a call's record is in Redis while its stream runs (with its message id, exact input and
the output delivered so far) and gone once the call is settled, however it ended. The kill -9 cases
are the fault suite's (tests/chaos: the web process killed mid-stream, the worker mid-job)."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model

from billing.models import Budget, LedgerEntry
from claudeapp.calls import inflight
from tests.api.test_reconciliation import (
    ENDINGS,
    Ending,
    call_anthropic,
    call_api_conversation,
    call_api_stateless,
    call_chat,
    settled_ledger,
)
from tests.chaos.harness import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

CALLERS = {"anthropic": call_anthropic, "api_stateless": call_api_stateless,
           "api_conversation": call_api_conversation, "chat": call_chat}  # fmt: skip
SLOW = Ending("slow", "[[words:90]] [[chunk-ms:60]]", exact=True)  # about 2 s of stream


@pytest.fixture(autouse=True)
def no_records_before():
    from billing import redisconn

    client = redisconn.client()
    keys = list(client.scan_iter(match=f"{inflight._prefix()}:inflight*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def budget(db):
    return Budget.objects.create(scope="global", period="month", limit_micros=10**12)


@pytest.fixture
def key(partner_key_factory):
    return partner_key_factory(scopes=["messages", "conversations"])


@pytest.fixture
def chat_person(db):
    return get_user_model().objects.create_user("inflight", password="x")


def _call(surface: str, server, key, person, ending: Ending) -> None:
    caller = CALLERS[surface]
    caller(server, person if surface == "chat" else key, "text", ending)


@pytest.mark.parametrize("surface", list(CALLERS))
def test_a_stream_s_record_carries_its_progress_and_is_gone_once_settled(
    live_gateway, budget, key, chat_person, surface
):
    thread = threading.Thread(target=_call, args=(surface, live_gateway, key, chat_person, SLOW))
    thread.start()
    try:
        # Past the first text and one output checkpoint (CALLS_INFLIGHT_CHECKPOINT_SECONDS).
        wait_until(lambda: any(int(r.get("out") or 0) > 0 for r in inflight.records()), timeout=20,
                   what="a checkpoint of the stream's output")  # fmt: skip
        (record,) = inflight.records()
        assert record["msg"].startswith("msg_") and record["rid"]
        assert record["res"] and record["streamed"] == "1" and record["proc"] != inflight.process_id()
        assert '"input_tokens"' in record["usage"]  # message_start's exact figures, not the bound
    finally:
        thread.join(30)

    (entry,) = settled_ledger()
    wait_until(lambda: inflight.records() == [], timeout=10, what="the record dropped at settlement")
    assert entry.upstream_message_id == record["msg"]
    # The record names the key the call was settled under: a turn's answer, else upstream's message id
    # (a process dying mid-call has its call billed under it by the reaper: once, and under its answer).
    assert record["ek"] == entry.event_key
    turn = surface in ("chat", "api_conversation")
    assert entry.event_key.startswith("message:") if turn else entry.event_key == f"upstream:{record['msg']}"
    assert record.get("subject", "") == (entry.subject if turn else "")


@pytest.mark.parametrize("ending", ["complete", "cut", "disconnect", "retry-after-cut"])
def test_no_record_outlives_a_settled_call_however_it_ended(live_gateway, budget, key, chat_person, ending):
    call_anthropic(live_gateway, key, "text", ENDINGS[ending])

    settled_ledger()
    wait_until(lambda: inflight.records() == [], timeout=10, what="the record dropped at settlement")
    assert LedgerEntry.objects.exists()


@pytest.mark.parametrize(
    ("path", "fault"),
    [(path, fault) for path in ("/anthropic/v1/messages", "/api/v1/messages") for fault in ("", "[[fault:500]]")],
)
def test_a_stateless_call_s_record_is_written_at_admission_and_gone_once_settled(
    live_gateway, budget, key, path, fault
):
    """The stateless surfaces write the record in admission's thread, before the upstream request (no
    task of the call's own): while upstream holds the answer the record is there, not streamed, with
    the hold; once the call is billed (or failed and its hold given back) it is gone."""
    import httpx

    headers = {"x-api-key": key.raw, "anthropic-version": "2023-06-01", "authorization": f"Bearer {key.raw}"}
    body = {"model": "claude-haiku-5-5", "max_tokens": 50,
            "messages": [{"role": "user", "content": f"hold on [[latency:1500]] {fault}"}]}  # fmt: skip
    answer: dict[str, httpx.Response] = {}
    thread = threading.Thread(
        target=lambda: answer.update(r=httpx.post(f"{live_gateway.url}{path}", json=body, headers=headers, timeout=30))
    )
    thread.start()
    try:
        wait_until(lambda: len(inflight.records()) == 1, timeout=10, what="the record written at admission")
        (record,) = inflight.records()
        assert record["streamed"] == "0" and record["res"] and record["amount"] != "0"
        assert not record.get("final")  # upstream has not answered yet
    finally:
        thread.join(30)

    wait_until(lambda: inflight.records() == [], timeout=10, what="the record dropped at settlement")
    if fault:
        assert answer["r"].status_code >= 500 and not LedgerEntry.objects.exists()
        budget.refresh_from_db()
        assert budget.reserved_micros == 0
    else:
        assert answer["r"].status_code == 200, answer["r"].text
        (entry,) = settled_ledger()
        assert entry.upstream_message_id == answer["r"].json()["id"]
