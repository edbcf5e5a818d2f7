"""The gateway behind PgBouncer in transaction mode, with the settings docs/deploy.md gives for it
(DB_PREPARED_STATEMENTS=0 for PgBouncer before 1.21, server-side cursors off through DATABASE_URL), with and
without the gateway's own connection pool: concurrent partner calls, streamed and not, under a budget, all
answered, each held, settled and billed once, no hold left, their request log lines and routing decisions
written (COPY). The PgBouncer is Debian's (1.18, scripts/ensure_pgbouncer.sh), on fewer server connections
than the web process asks for, so its calls share them as in production; the test reads the results
directly from Postgres."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from billing.models import Budget, LedgerEntry, Reservation
from claudeapp.requestlog.models import RequestLog
from routing.models import RoutingDecision
from tests.chaos.harness import wait_until
from tests.fixtures import pgbouncer as pgbouncer_mod
from tests.fixtures.live_web import WebServer, seed_for_web, web_env

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not pgbouncer_mod.installed(), reason="pgbouncer is not installed (scripts/ensure_pgbouncer.sh)"
    ),
]

CALLS = 12  # half streamed; all at once
BEHIND_PGBOUNCER = {
    "DB_PREPARED_STATEMENTS": "0",  # PgBouncer 1.18 keeps no prepared statements in transaction mode
    "DB_POOL_MAX_SIZE": "5",
    "DB_THREADS": "5",
    "DB_POOL_TIMEOUT": "5",
    "REQUEST_LOG_FLUSH_SECONDS": "0.1",
}


@pytest.fixture(scope="module")
def pgbouncer(django_db_setup):
    from django.db import connection

    bouncer = pgbouncer_mod.PgBouncer(connection.settings_dict, pool_size=3)
    try:
        yield bouncer
    finally:
        bouncer.stop()


@pytest.fixture(scope="module", params=["1", "0"], ids=["own-pool", "no-own-pool"])
def gateway_behind_pgbouncer(request, pgbouncer, emulator):
    database = f"{pgbouncer.url}?disable_server_side_cursors=True"
    extra = {**BEHIND_PGBOUNCER, "DB_POOL": request.param}
    server = WebServer(web_env(database=database, emulator_url=emulator.url, extra=extra))
    try:
        yield server
    finally:
        server.stop()


def _call(url: str, key, *, stream: bool, request_id: str) -> tuple[int, str]:
    headers = {"x-api-key": key.raw, "anthropic-version": "2023-06-01", "x-request-id": request_id}
    body = {"model": "auto", "max_tokens": 32, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream("POST", f"{url}/anthropic/v1/messages", json=body, headers=headers, timeout=30) as response:
        text = response.read().decode()
    return response.status_code, text


def test_concurrent_partner_calls_through_pgbouncer_are_held_settled_billed_once_and_logged(
    gateway_behind_pgbouncer, pgbouncer, emulator_reset, gateway_settings, partner_key_factory
):
    seed_for_web()
    key = partner_key_factory(scopes=["messages"])
    budget = Budget.objects.create(scope="partner_key", scope_id=key.pk, period="day", limit_micros=10_000_000)
    passed_before = pgbouncer.stats()["total_xact_count"]
    request_ids = [f"req_pgbouncer_{index}" for index in range(CALLS)]

    def call(index: int) -> tuple[int, str]:
        return _call(gateway_behind_pgbouncer.url, key, stream=index % 2 == 1, request_id=request_ids[index])

    with ThreadPoolExecutor(CALLS) as pool:
        answers = list(pool.map(call, range(CALLS)))

    failures = [(rid, status, text) for rid, (status, text) in zip(request_ids, answers, strict=True) if status != 200]
    assert not failures, (failures, gateway_behind_pgbouncer.log(), pgbouncer.log())
    assert all("message_stop" in text for status, text in answers[1::2])  # the streams ran to their end
    lines = RequestLog.objects.filter(request_id__in=request_ids)
    wait_until(lambda: lines.count() == CALLS, timeout=20, what="every call's request log line")
    assert {line.status for line in lines} == {"complete"}
    bills = {entry.upstream_request_id: entry for entry in LedgerEntry.objects.filter(principal_id=key.pk)}
    assert len(bills) == CALLS == LedgerEntry.objects.count()  # one bill per call, for distinct upstream calls
    assert {line.upstream_request_id: line.cost_micros for line in lines} == {
        upstream_id: entry.cost_micros for upstream_id, entry in bills.items()
    }
    budget.refresh_from_db()
    assert budget.reserved_micros == 0
    assert budget.spent_micros == sum(entry.cost_micros for entry in bills.values()) > 0
    assert not Reservation.objects.exists()
    decisions = RoutingDecision.objects.filter(principal_kind="partner_key", principal_id=key.pk)
    wait_until(lambda: decisions.count() == CALLS, timeout=20, what="every call's routing decision")
    assert {line.route_decision_id for line in lines} == set(decisions.values_list("pk", flat=True))
    # The web process's database work went through PgBouncer (this process reads Postgres directly).
    assert pgbouncer.stats()["total_xact_count"] - passed_before >= CALLS
