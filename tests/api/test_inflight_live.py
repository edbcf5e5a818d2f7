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
        assert record["msg"].startswith("msg_") and record["rid"] and record["ek"] == f"upstream:{record['msg']}"
        assert record["res"] and record["streamed"] == "1" and record["proc"] != inflight.process_id()
        assert '"input_tokens"' in record["usage"]  # message_start's exact figures, not the bound
    finally:
        thread.join(30)

    (entry,) = settled_ledger()
    wait_until(lambda: inflight.records() == [], timeout=10, what="the record dropped at settlement")
    assert entry.upstream_message_id == record["msg"]


@pytest.mark.parametrize("ending", ["complete", "cut", "disconnect", "retry-after-cut"])
def test_no_record_outlives_a_settled_call_however_it_ended(live_gateway, budget, key, chat_person, ending):
    call_anthropic(live_gateway, key, "text", ENDINGS[ending])

    settled_ledger()
    wait_until(lambda: inflight.records() == [], timeout=10, what="the record dropped at settlement")
    assert LedgerEntry.objects.exists()
