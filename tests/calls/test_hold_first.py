"""A call the rules route alone is admitted in two round trips and one wait (calls/admission.py,
`_admit_hold_first`): the budget hold is taken while one Redis round trip takes the rate limits, the org's
upstream room and (a stateless call's) write-ahead record, which names the hold by an id drawn ahead. Each
way admission can end leaves what the other order leaves: an admitted call holds its hold, its slot, its
record and its decision; a refused one gives back all it took (a limit refusal the hold, a budget refusal
the limits' slot and the record). A principal its limits just refused takes them first again (no hold for a
flood of refused calls) until the refusal's retry-after has passed, and one a budget just refused for a
while (a flood on a spent budget is held by the rate limits). Real Postgres and Redis; the round trips are
counted by wrapping the real client's pipeline and the limits script, the holds by wrapping budgets._hold."""

from __future__ import annotations

import functools
import time

import pytest
import redis

from billing import budgets, limits, redisconn
from billing.errors import BudgetExceeded, LimiterUnavailable, RateLimited
from billing.models import Budget, RateLimitPolicy, Reservation
from billing.upstream import observe_upstream, upstream_wait_seconds
from claudeapp.calls import admission as calls_admission
from claudeapp.calls import inflight, settlement
from claudeapp.calls.errors import UpstreamBusy
from routing import decisionlog
from routing.models import RoutingDecision

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "claude-haiku-4-5"


@pytest.fixture(autouse=True)
def no_refusals_remembered(no_learned_limits):
    calls_admission._refused_until.clear()
    yield
    calls_admission._refused_until.clear()
    limits._policies.clear()


@pytest.fixture
def counted(monkeypatch):
    """Redis round trips admission makes: pipelines sent, and limit scripts sent on their own."""
    sent = {"pipelines": 0, "limit scripts": 0}
    client = redisconn.client()
    real_pipeline, real_script = client.pipeline, limits._script

    def pipeline(*args, **kwargs):
        sent["pipelines"] += 1
        return real_pipeline(*args, **kwargs)

    class CountedScript:
        def __init__(self, script) -> None:
            self.sha, self._script = script.sha, script

        def __call__(self, **kwargs):
            sent["limit scripts"] += 1
            return self._script(**kwargs)

    monkeypatch.setattr(client, "pipeline", pipeline)
    monkeypatch.setattr(limits, "_script", lambda: CountedScript(real_script()))
    return sent


def _admit(person, *, text: str = "hi", max_tokens: int = 10, stateless: bool = True) -> calls_admission.Admission:
    """A stateless partner call (its record written in admission, its decision queued), or a conversation's
    turn (no record yet, its decision stored at once: the turn's rows point at it)."""
    return calls_admission.admit(
        principal=person, requested_model=MODEL, messages=[{"role": "user", "content": text}], system=None,
        max_tokens=max_tokens, decision_later=stateless,
        start=functools.partial(inflight.start_on, streamed=False) if stateless else None,
    )  # fmt: skip


def _policy(person, **limits_on) -> None:
    RateLimitPolicy.objects.create(scope="user", scope_id=person.id, **limits_on)
    limits._policies.clear()


@pytest.fixture
def holds_tried(monkeypatch) -> list[int]:
    """One item per hold admission tried to take (given back or refused too)."""
    tried: list[int] = []
    real = budgets._hold

    def counted(reservation, ids):
        tried.append(1)
        return real(reservation, ids)

    monkeypatch.setattr(budgets, "_hold", counted)
    return tried


def _decisions() -> int:
    decisionlog.flush()  # a stateless call's decision is queued for the bulk writer when one runs
    return RoutingDecision.objects.count()


def _nothing_held(budget) -> None:
    budget.refresh_from_db()
    assert budget.reserved_micros == 0
    assert not Reservation.objects.exists()
    assert inflight.records() == []


@pytest.mark.parametrize("stateless", [True, False], ids=["stateless-call", "conversation-turn"])
def test_an_admitted_call_holds_its_hold_slot_record_and_decision_in_two_round_trips(
    person, budget, counted, stateless
):
    _policy(person, requests_per_minute=10, input_tokens_per_minute=10_000, concurrent_requests=1)
    admitted = _admit(person, stateless=stateless)

    assert counted == {"pipelines": 1, "limit scripts": 0}  # the take, the limits and the record: one round trip
    assert Reservation.objects.get().pk == admitted.reservation.pk  # under the id drawn ahead
    assert admitted.ticket.concurrency_keys and admitted.headers()["x-ratelimit-remaining-requests"] == "9"
    if stateless:
        (record,) = inflight.records()
        assert int(record["res"]) == admitted.reservation.pk and record["id"] == admitted.inflight.call_id
        decisionlog.flush()
    else:
        assert inflight.records() == [] and admitted.inflight is None  # the turn writes its own, later
    budget.refresh_from_db()
    assert budget.reserved_micros == admitted.reservation.amount_micros > 0
    assert RoutingDecision.objects.filter(pk=admitted.decision.decision_id, model_id=MODEL).exists()
    with pytest.raises(RateLimited) as refused:  # its one concurrent slot is taken
        _admit(person, stateless=stateless)
    assert refused.value.axis == "concurrent"
    settlement.abandon(admission=admitted)
    _nothing_held(budget)


@pytest.mark.parametrize("axis", ["requests", "input-tokens", "concurrent"])
def test_a_limit_refusal_gives_back_the_hold_and_the_record_and_stores_no_decision(person, budget, axis):
    from claudeapp.calls import accounting

    one_call = accounting.local_bound(messages=[{"role": "user", "content": "hi"}], system=None).tokens
    _policy(person, **{"requests": {"requests_per_minute": 1}, "input-tokens": {"input_tokens_per_minute": one_call},
                       "concurrent": {"concurrent_requests": 1}}[axis])  # fmt: skip
    first = _admit(person)  # the one request, slot or call's worth of input tokens goes to this call
    decisions = _decisions()

    with pytest.raises(RateLimited) as refused:
        _admit(person)
    assert refused.value.axis == axis
    assert _decisions() == decisions
    settlement.abandon(admission=first)
    _nothing_held(budget)


def test_a_budget_refusal_gives_back_its_limits_drops_its_record_and_stores_its_decision(person, seeded, counted):
    Budget.objects.create(scope="global", period="month", limit_micros=1)
    _policy(person, requests_per_minute=10, concurrent_requests=1)
    decisions = _decisions()

    with pytest.raises(BudgetExceeded):
        _admit(person)
    assert counted == {"pipelines": 2, "limit scripts": 0}  # the round trip beside the hold; the give-back
    assert _decisions() == decisions + 1  # the router decided: the console shows it
    assert inflight.records() == [] and not Reservation.objects.exists()

    # A flood on the spent budget: the limits first again, each call a request taken before its hold (so the
    # rate limit holds the flood, as before the hold went first).
    for _ in range(2):
        with pytest.raises(BudgetExceeded):
            _admit(person)
    assert counted == {"pipelines": 2, "limit scripts": 4}  # a take and its finish each
    Budget.objects.all().delete()
    admitted = _admit(person)  # the one concurrent slot came back each time
    assert admitted.headers()["x-ratelimit-remaining-requests"] == "6"  # 10 less 4: a refused call is a request
    settlement.abandon(admission=admitted)


def test_a_call_both_its_budget_and_its_limits_refuse_is_told_the_budget_and_leaves_nothing(person, seeded):
    budget = Budget.objects.create(scope="global", period="month", limit_micros=1)
    _policy(person, concurrent_requests=1)
    budget.limit_micros = 10**12
    budget.save()
    first = _admit(person)  # the one slot
    Budget.objects.filter(pk=budget.pk).update(limit_micros=1)  # spent now (for the next hold)

    with pytest.raises(BudgetExceeded):
        _admit(person)  # its limits refused it too (no slot): 402 is the answer, as when the hold went first

    settlement.abandon(admission=first)
    assert not Reservation.objects.exists() and inflight.records() == []
    Budget.objects.filter(pk=budget.pk).update(limit_micros=10**12)
    settlement.abandon(admission=_admit(person))  # the slot is free: nothing of the refused call was left


def test_the_record_names_the_hold_as_taken_when_a_budget_went_away_meanwhile(person, seeded, monkeypatch):
    """The covering budgets are read (a per-process copy) before the hold; one disabled since is left out
    when the hold is taken, and the record, written before, is put right (the reaper settles by it)."""
    mine = Budget.objects.create(scope="user", scope_id=person.id, period="month", limit_micros=10**12)
    everyone = Budget.objects.create(scope="global", period="month", limit_micros=10**12)
    real_ready = budgets.ready

    def then_disabled(**kwargs):
        reservation = real_ready(**kwargs)
        assert sorted(reservation.budget_ids) == sorted([mine.pk, everyone.pk])
        Budget.objects.filter(pk=everyone.pk).update(enabled=False)  # no signal: the copy stays stale
        return reservation

    monkeypatch.setattr(budgets, "ready", then_disabled)
    admitted = _admit(person)

    assert admitted.reservation.budget_ids == [mine.pk]
    (record,) = inflight.records()
    assert (record["res"], record["budgets"]) == (str(admitted.reservation.pk), str(mine.pk))
    settlement.abandon(admission=admitted)
    mine.refresh_from_db()
    assert mine.reserved_micros == 0 and inflight.records() == []


def test_the_hold_is_taken_while_the_redis_round_trip_is_under_way(person, budget, monkeypatch):
    """Overlapped, not one after the other: when the hold is taken the record is already in Redis (its
    commands were sent first), and the reply is read after the hold."""
    real_take, seen = budgets.take, []

    def take(**kwargs):
        deadline = time.monotonic() + 2
        while not inflight.records() and time.monotonic() < deadline:
            time.sleep(0.002)
        seen.append(len(inflight.records()))
        return real_take(**kwargs)

    monkeypatch.setattr(budgets, "take", take)
    admitted = _admit(person)

    assert seen == [1]
    settlement.abandon(admission=admitted)
    _nothing_held(budget)


@pytest.mark.parametrize("refused_by", ["limits", "budget"])
def test_a_refused_call_gives_back_the_org_s_upstream_room_it_took_beside_it(person, seeded, refused_by):
    """The round trip takes the org's room while the hold is taken; a call then refused was never sent."""
    Budget.objects.create(scope="global", period="month", limit_micros=1 if refused_by == "budget" else 10**12)
    if refused_by == "limits":
        _policy(person, requests_per_minute=1)
        settlement.abandon(admission=_admit(person))  # its one request (nothing learned of the org yet)
    observe_upstream(
        model_id=MODEL,
        headers={"anthropic-ratelimit-requests-limit": "1", "anthropic-ratelimit-requests-remaining": "1"},
    )
    with pytest.raises(RateLimited if refused_by == "limits" else BudgetExceeded):
        _admit(person)
    assert upstream_wait_seconds(model_id=MODEL, input_tokens=10) == 0  # the org's one request is still there
    assert inflight.records() == [] and not Reservation.objects.exists()


def test_an_upstream_refusal_gives_back_the_hold_the_slot_the_tokens_and_the_record(person, budget, settings):
    settings.UPSTREAM_MAX_WAIT_SECONDS = 0.5
    _policy(person, output_tokens_per_minute=15, concurrent_requests=1)
    observe_upstream(
        model_id=MODEL,
        headers={"anthropic-ratelimit-requests-limit": "1", "anthropic-ratelimit-requests-remaining": "0"},
    )
    with pytest.raises(UpstreamBusy):
        _admit(person)
    _nothing_held(budget)
    redisconn.client().delete(*redisconn.client().keys(redisconn.key("upstream", MODEL, "*")))
    settlement.abandon(admission=_admit(person))  # the slot and the 10 output tokens came back (15 a minute)


@pytest.mark.parametrize("fail_open", [True, False], ids=["limits-fail-open", "limits-fail-closed"])
def test_redis_unreachable_lets_the_call_go_on_unrecorded_or_refuses_it_holding_nothing(
    person, budget, settings, monkeypatch, fail_open
):
    """Redis gone for the whole round trip (a client on a port nothing listens on)."""
    settings.BILLING_RATE_LIMIT_FAIL_OPEN = fail_open
    _policy(person, requests_per_minute=10)
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    monkeypatch.setattr(redisconn, "client", lambda: dead)
    if not fail_open:
        with pytest.raises(LimiterUnavailable):
            _admit(person)
        monkeypatch.undo()
        _nothing_held(budget)
        return
    admitted = _admit(person)
    monkeypatch.undo()
    assert admitted.ticket.degraded and admitted.inflight is None
    settlement.abandon(admission=admitted)
    _nothing_held(budget)


def test_scripts_flushed_from_redis_are_loaded_and_run(person, budget):
    _policy(person, requests_per_minute=10)
    redisconn.client().script_flush()
    admitted = _admit(person)
    assert admitted.headers()["x-ratelimit-remaining-requests"] == "9"
    assert len(inflight.records()) == 1
    settlement.abandon(admission=admitted)
    _nothing_held(budget)


def test_a_principal_its_limits_just_refused_takes_them_first_until_the_retry_after(person, budget, holds_tried):
    _policy(person, requests_per_minute=1)
    settlement.abandon(admission=_admit(person))
    assert len(holds_tried) == 1
    with pytest.raises(RateLimited):
        _admit(person)  # refused beside its hold: the hold was taken and given back
    assert len(holds_tried) == 2

    for _ in range(3):  # a flood: the limits first, no hold
        with pytest.raises(RateLimited):
            _admit(person)
    assert len(holds_tried) == 2
    _nothing_held(budget)

    calls_admission._refused_until[person.key] = 0.0  # the retry-after has passed (not waited for: up to 60 s)
    with pytest.raises(RateLimited):
        _admit(person)
    assert len(holds_tried) == 3


def test_a_call_that_needs_the_router_s_classifier_or_an_upstream_count_takes_the_limits_first(
    person, budget, monkeypatch, holds_tried
):
    """The classifier and count_tokens are calls of their own, made inside the rate limits: such a call's
    limits are taken before anything else (the hold waits for the count). A flood of them refused holds nothing."""
    from claudeapp.calls import accounting

    _policy(person, requests_per_minute=1)
    settlement.abandon(admission=_admit(person))
    calls_admission._refused_until.clear()
    del holds_tried[:]
    monkeypatch.setattr(accounting, "needs_count", lambda bound: True)  # an unsure local count (an image, say)
    with pytest.raises(RateLimited):
        _admit(person)
    assert holds_tried == []
    _nothing_held(budget)
