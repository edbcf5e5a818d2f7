"""An answer whose reply carries no bill (`/anthropic/v1/messages`, not streamed) goes out before its
bookkeeping (claudeapp/calls/run.py `complete(reply_first=True)`, api/fastpath.py `after_reply`), through
the live gateway: with the settlement held up by a lock on the call's hold, the reader still gets its
answer, and the ledger gets the call once the lock is gone, exactly once and exactly. `/api/v1/messages`
replies with the bill (`cost_micros`), so its reply waits for the settlement."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psycopg
import pytest
from django.db import connection

from billing.models import Budget, LedgerEntry, Reservation
from claudeapp.calls import inflight
from tests.api.test_reconciliation import settled_ledger
from tests.chaos.harness import wait_until
from tests.fixtures.live_web import database_url

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {
    "model": "claude-haiku-5-5",
    "max_tokens": 50,
    "messages": [{"role": "user", "content": "take your time [[latency:800]]"}],
}


@pytest.fixture
def budget(db):
    return Budget.objects.create(scope="global", period="month", limit_micros=10**12)


@pytest.fixture
def key(partner_key_factory):
    return partner_key_factory(scopes=["messages"])


def _headers(key) -> dict[str, str]:
    return {"x-api-key": key.raw, "anthropic-version": "2023-06-01", "authorization": f"Bearer {key.raw}"}


@contextmanager
def _hold_locked() -> Iterator[None]:
    """Once the call's hold exists, lock its row from a connection of our own: the settlement (which
    deletes the row) waits for it until the block ends."""
    wait_until(Reservation.objects.exists, timeout=10, what="the call's hold")
    hold = Reservation.objects.get()
    with psycopg.connect(database_url(connection.settings_dict), autocommit=False) as locker:
        locker.execute("SELECT id FROM billing_reservation WHERE id = %s FOR UPDATE", [hold.pk])
        try:
            yield
        finally:
            locker.rollback()


def _post(url: str, key, answer: dict[str, httpx.Response]) -> threading.Thread:
    thread = threading.Thread(
        target=lambda: answer.update(r=httpx.post(url, json=BODY, headers=_headers(key), timeout=30)), daemon=True
    )
    thread.start()
    return thread


def test_the_anthropic_answer_does_not_wait_for_its_settlement_which_lands_once_after(live_gateway, budget, key):
    answer: dict[str, httpx.Response] = {}
    thread = _post(f"{live_gateway.url}/anthropic/v1/messages", key, answer)
    with _hold_locked():
        thread.join(20)
        assert not thread.is_alive(), "the reply waited for the settlement"
        assert answer["r"].status_code == 200, answer["r"].text
        assert not LedgerEntry.objects.exists()  # the settlement is still held up by the lock
        # The end checkpoint went on the write-ahead record before the settlement blocked (its first
        # statement, or 0.1 s after the answer for one slow to land): a process killed now is billed by the
        # reaper at upstream's exact usage, not at the bound.
        wait_until(lambda: inflight.records()[0].get("final"), timeout=5, what="the end checkpoint")
        (record,) = inflight.records()
        assert record["msg"] == answer["r"].json()["id"]

    (entry,) = settled_ledger()
    usage = answer["r"].json()["usage"]
    assert entry.upstream_message_id == answer["r"].json()["id"]
    assert (entry.input_tokens, entry.output_tokens) == (usage["input_tokens"], usage["output_tokens"])
    wait_until(lambda: inflight.records() == [], timeout=10, what="the record dropped at settlement")
    budget.refresh_from_db()
    assert budget.reserved_micros == 0 and budget.spent_micros == entry.cost_micros


def test_the_api_reply_carries_its_bill_so_it_waits_for_the_settlement(live_gateway, budget, key):
    answer: dict[str, httpx.Response] = {}
    thread = _post(f"{live_gateway.url}/api/v1/messages", key, answer)
    with _hold_locked():
        wait_until(lambda: inflight.records() and inflight.records()[0].get("final"), timeout=20,
                   what="upstream's answer at the gateway")  # fmt: skip
        thread.join(0.5)
        assert thread.is_alive() and not answer  # no reply while its bill cannot be written
    thread.join(20)

    (entry,) = settled_ledger()
    assert answer["r"].status_code == 200, answer["r"].text
    assert answer["r"].json()["cost_micros"] == entry.cost_micros


def test_a_process_sent_sigterm_after_the_reply_still_settles_the_call_before_it_exits(emulator_reset, budget, key):
    """uvicorn as the Procfile runs it: the request's task lives until its bookkeeping is done, and a
    graceful shutdown waits for it (then the request log's shutdown flush writes its row)."""
    import signal
    import subprocess

    from claudeapp.requestlog.models import RequestLog
    from tests.fixtures.live_web import seed_for_web, web_env
    from tests.requestlog.test_shutdown import NEVER_ON_ITS_OWN, ProcfileWebServer

    seed_for_web()
    env = web_env(database=database_url(connection.settings_dict), emulator_url=emulator_reset.url,
                  extra=NEVER_ON_ITS_OWN)  # fmt: skip
    server = ProcfileWebServer(env)
    try:
        answer: dict[str, httpx.Response] = {}
        thread = _post(f"{server.url}/anthropic/v1/messages", key, answer)
        with _hold_locked():
            thread.join(20)
            assert answer["r"].status_code == 200, answer["r"].text
            server.proc.send_signal(signal.SIGTERM)
            with pytest.raises(subprocess.TimeoutExpired):  # it waits for the settlement the lock holds up
                server.proc.wait(1)
        # uvicorn re-raises the signal once it has shut down: SIGTERM is its ordinary exit.
        assert server.proc.wait(30) in (0, -signal.SIGTERM), server.log()
    finally:
        server.stop()
    # Filtered by key: a shared server's request log flush from an earlier test may land in this one.
    (entry,) = LedgerEntry.objects.filter(principal_id=key.pk)
    assert entry.upstream_message_id == answer["r"].json()["id"]
    assert not Reservation.objects.exists()
    (row,) = RequestLog.objects.filter(principal_id=key.pk)
    assert (row.status, row.cost_micros) == ("complete", entry.cost_micros)
