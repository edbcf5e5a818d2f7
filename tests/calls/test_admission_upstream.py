"""The org's upstream room is taken after the budget hold, and a stateless call's write-ahead record rides on that
same Redis round trip (calls/admission.py, calls/inflight.start_on): the record is there when admission returns;
a budget refusal takes none of the org's room; an upstream refusal gives back the hold, the rate-limit slot and
the record; Redis unreachable lets the call go on unrecorded. Real Postgres and Redis; the round trips are
counted by wrapping the real client's pipeline."""

from __future__ import annotations

import functools

import pytest

from billing import budgets, limits, redisconn
from billing.errors import BudgetExceeded
from billing.models import Budget, RateLimitPolicy, Reservation
from billing.upstream import observe_upstream, upstream_wait_seconds
from claudeapp.calls import admission as calls_admission
from claudeapp.calls import inflight, settlement
from claudeapp.calls.errors import UpstreamBusy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_learned_limits")]

MODEL = "claude-haiku-4-5"


def _admit(person, *, max_tokens: int = 10) -> calls_admission.Admission:
    return calls_admission.admit(
        principal=person, requested_model=MODEL, messages=[{"role": "user", "content": "hi"}], system=None,
        max_tokens=max_tokens, start=functools.partial(inflight.start_on, streamed=True),
    )  # fmt: skip


def _requests_left(n: int) -> None:
    observe_upstream(
        model_id=MODEL,
        headers={"anthropic-ratelimit-requests-limit": "1", "anthropic-ratelimit-requests-remaining": str(n)},
    )  # one request a minute: none comes back during the test


def test_the_record_is_written_in_the_upstream_take_s_round_trip(person, budget, monkeypatch):
    pipelines: list[int] = []
    real = redisconn.client().pipeline

    def counting(*args, **kwargs):
        pipelines.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(redisconn.client(), "pipeline", counting)
    admitted = _admit(person)
    sent = len(pipelines)

    (record,) = inflight.records()
    assert record["id"] == admitted.inflight.call_id and admitted.inflight.streamed
    assert int(record["res"]) == admitted.reservation.pk
    assert sent == 1  # the take and the record: one round trip (the limit ticket is a script of its own)
    settlement.abandon(admission=admitted)
    assert inflight.records() == []


def test_a_budget_refusal_takes_none_of_the_org_s_upstream_room(person, seeded):
    Budget.objects.create(scope="global", period="month", limit_micros=1)
    _requests_left(1)
    with pytest.raises(BudgetExceeded):
        _admit(person)
    assert upstream_wait_seconds(model_id=MODEL, input_tokens=10) == 0  # the one request left is still there
    assert inflight.records() == []


def test_an_upstream_refusal_gives_back_the_hold_the_slot_and_the_record(person, budget, settings):
    settings.UPSTREAM_MAX_WAIT_SECONDS = 0.5
    RateLimitPolicy.objects.create(scope="user", scope_id=person.id, concurrent_requests=1)
    limits._policies.clear()
    _requests_left(0)
    with pytest.raises(UpstreamBusy):
        _admit(person)
    assert not Reservation.objects.exists()
    budget.refresh_from_db()
    assert budget.reserved_micros == 0
    assert inflight.records() == []
    redisconn.client().delete(*redisconn.client().keys(redisconn.key("upstream", MODEL, "*")))
    settlement.abandon(admission=_admit(person))  # the one concurrent slot was given back


def test_with_redis_unreachable_the_call_goes_on_unrecorded_and_unthrottled(person, budget, monkeypatch):
    """Redis gone at the take (a client on a port nothing listens on; limits fail open by default)."""
    import redis

    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    admitted = None
    monkeypatch.setattr(redisconn, "client", lambda: dead)
    try:
        admitted = _admit(person)
        assert admitted.inflight is None
        assert Reservation.objects.filter(pk=admitted.reservation.pk).exists()
    finally:
        monkeypatch.undo()
        if admitted is not None:
            budgets.release(reservation=admitted.reservation)


def test_an_upstream_refusal_with_the_database_gone_still_gives_back_the_slot_and_the_record(
    person, budget, settings, monkeypatch
):
    """The release of the hold fails (the database went away at that moment: simulated, as it cannot be made
    to fail for one statement here); the rate-limit slot and the write-ahead record still go back, and the hold
    is left for the stale-hold reaper."""
    from django.db import OperationalError

    settings.UPSTREAM_MAX_WAIT_SECONDS = 0.5
    RateLimitPolicy.objects.create(scope="user", scope_id=person.id, concurrent_requests=1)
    limits._policies.clear()
    _requests_left(0)

    def database_gone(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(budgets, "release", database_gone)
    with pytest.raises(OperationalError):
        _admit(person)
    monkeypatch.undo()
    assert inflight.records() == []
    (held,) = Reservation.objects.all()
    budgets.release(reservation=held)
    redisconn.client().delete(*redisconn.client().keys(redisconn.key("upstream", MODEL, "*")))
    settlement.abandon(admission=_admit(person))  # the one concurrent slot was given back
