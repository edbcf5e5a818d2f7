from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from claudeapp.claude import breaker as breaker_mod
from claudeapp.claude.breaker import Breaker, BreakerPolicy, BreakerState
from claudeapp.core import invalidation, redisconn

pytestmark = pytest.mark.usefixtures("breaker_settings")
ROOT = Path(__file__).resolve().parents[2]


def fail(breaker: Breaker, model: str, times: int) -> BreakerState:
    state = BreakerState.CLOSED
    for _ in range(times):
        state = breaker.record_failure(breaker.allow(model))
    return state


def open_circuit(breaker: Breaker, model: str) -> None:
    assert fail(breaker, model, 3) is BreakerState.OPEN


def test_circuit_stays_closed_below_the_failure_threshold(breaker, model_id):
    model = model_id()
    assert fail(breaker, model, 2) is BreakerState.CLOSED
    assert breaker.allow(model).allowed
    assert breaker.state(model).failures == 2


def test_threshold_failures_within_the_window_open_the_circuit(breaker, model_id):
    model = model_id()
    open_circuit(breaker, model)
    ticket = breaker.allow(model)
    assert not ticket.allowed and ticket.state is BreakerState.OPEN
    assert breaker.state(model).state is BreakerState.OPEN


def test_failures_spread_wider_than_the_window_do_not_add_up(breaker, model_id, clock):
    model = model_id()
    fail(breaker, model, 2)
    clock.advance(61)
    assert fail(breaker, model, 2) is BreakerState.CLOSED
    assert breaker.allow(model).allowed


def test_after_the_cooldown_exactly_one_probe_goes_through(breaker, model_id, clock):
    model = model_id()
    open_circuit(breaker, model)
    clock.advance(29)
    assert not breaker.allow(model).allowed
    clock.advance(1)
    assert breaker.state(model).state is BreakerState.HALF_OPEN
    probe = breaker.allow(model)
    assert probe.allowed and probe.state is BreakerState.HALF_OPEN and probe.probe_id
    assert not breaker.allow(model).allowed
    assert breaker.state(model).probes_in_flight == 1


def test_a_successful_probe_closes_the_circuit(breaker, model_id, clock):
    model = model_id()
    open_circuit(breaker, model)
    clock.advance(30)
    breaker.record_success(breaker.allow(model))
    assert breaker.state(model).state is BreakerState.CLOSED
    assert breaker.allow(model).allowed and breaker.allow(model).allowed


def test_a_failed_probe_reopens_the_circuit_for_another_cooldown(breaker, model_id, clock):
    model = model_id()
    open_circuit(breaker, model)
    clock.advance(30)
    assert breaker.record_failure(breaker.allow(model)) is BreakerState.OPEN
    clock.advance(29)
    assert not breaker.allow(model).allowed
    clock.advance(1)
    assert breaker.allow(model).allowed


def test_concurrent_callers_share_the_probe_slots_atomically(breaker, model_id, clock, settings):
    settings.CLAUDE_BREAKER_HALF_OPEN_PROBES = 2
    model = model_id()
    open_circuit(breaker, model)
    clock.advance(30)
    granted: list[bool] = []
    start = threading.Barrier(16)

    def call() -> None:
        start.wait()
        granted.append(breaker.allow(model).allowed)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert granted.count(True) == 2


def test_a_probe_whose_process_died_frees_its_slot_after_the_lease(breaker, model_id, clock):
    model = model_id()
    open_circuit(breaker, model)
    clock.advance(30)
    assert breaker.allow(model).allowed  # this probe never reports back
    clock.advance(60)
    assert not breaker.allow(model).allowed
    clock.advance(61)
    assert breaker.allow(model).allowed


def test_a_released_probe_lets_the_next_caller_probe(breaker, model_id, clock):
    model = model_id()
    open_circuit(breaker, model)
    clock.advance(30)
    breaker.release(breaker.allow(model))
    assert breaker.state(model).state is BreakerState.HALF_OPEN
    assert breaker.allow(model).allowed


def test_late_failures_of_calls_admitted_while_closed_do_not_disturb_the_probe(breaker, model_id, clock):
    model = model_id()
    stragglers = [breaker.allow(model) for _ in range(2)]
    open_circuit(breaker, model)
    clock.advance(30)
    probe = breaker.allow(model)
    for ticket in stragglers:
        breaker.record_failure(ticket)
    breaker.record_success(probe)
    assert breaker.state(model).state is BreakerState.CLOSED


def test_reset_closes_an_open_circuit(breaker, model_id):
    model = model_id()
    open_circuit(breaker, model)
    breaker_mod.reset(model)
    assert breaker.allow(model).allowed


def test_a_policy_provider_overrides_thresholds_per_model(breaker, model_id, settings):
    settings.CLAUDE_BREAKER_POLICY_PROVIDER = "tests.claude.test_breaker.strict_policy_for_strict_models"
    strict, lenient = model_id(), model_id()
    STRICT_MODELS.add(strict)
    try:
        assert fail(breaker, strict, 1) is BreakerState.OPEN
        assert fail(breaker, lenient, 1) is BreakerState.CLOSED
    finally:
        STRICT_MODELS.discard(strict)


STRICT_MODELS: set[str] = set()


def strict_policy_for_strict_models(model: str) -> BreakerPolicy | None:
    if model not in STRICT_MODELS:
        return None
    return BreakerPolicy(
        failure_threshold=1, window_seconds=10, cooldown_seconds=5, half_open_probes=1, probe_lease_seconds=10
    )


def test_the_async_api_shares_state_with_the_sync_one(breaker, model_id, clock):
    model = model_id()

    async def scenario() -> list[bool]:
        for _ in range(3):
            await breaker.arecord_failure(await breaker.aallow(model))
        seen = [(await breaker.aallow(model)).allowed]
        clock.advance(30)
        probe = await breaker.aallow(model)
        seen.append(probe.allowed)
        await breaker.arecord_success(probe)
        await breaker_mod.aclose_connections()
        return seen

    assert asyncio.run(scenario()) == [False, True]
    assert breaker.state(model).state is BreakerState.CLOSED


def test_breaker_state_is_visible_from_another_process(breaker, model_id):
    model = model_id()
    open_circuit(breaker, model)
    code = (
        # Settings are enough for the breaker (no app registry), which keeps this child quick.
        "import json, sys;"
        "from claudeapp.claude import breaker;"
        "s = breaker.state(sys.argv[1]); print(json.dumps({'state': s.state.value}))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "claudeapp.settings"}
    out = subprocess.run(
        [sys.executable, "-c", code, model], cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"state": "open"}


def test_the_breaker_fails_open_when_redis_is_down(settings, caplog):
    caplog.set_level(logging.DEBUG, logger="claudeapp.claude.breaker")  # repeats within 10 s log at debug
    real_redis_url = settings.REDIS_URL
    settings.REDIS_URL = "redis://127.0.0.1:1/4"  # nothing listens on port 1
    breaker_mod.reset_connections()
    try:
        breaker, model = Breaker(), "test-model-redis-down"
        ticket = breaker.allow(model)
        assert ticket.allowed
        assert breaker.record_failure(ticket) is BreakerState.CLOSED
        assert asyncio.run(_aallow_and_close(breaker, model)).allowed
        assert breaker.state(model).state is BreakerState.CLOSED
    finally:
        settings.REDIS_URL = real_redis_url
        breaker_mod.reset_connections()
    assert "redis unavailable" in caplog.text


async def _aallow_and_close(breaker: Breaker, model: str):
    try:
        return await breaker.aallow(model)
    finally:
        await breaker_mod.aclose_connections()


def test_a_process_trusts_a_closed_circuit_it_saw_for_its_local_window(model_id, monkeypatch):
    """The hot path skips the Redis round trip for a circuit seen closed moments ago; without the
    invalidation listener another process's opening reaches it when the window ends, and its own
    failure makes it ask again at once."""
    monkeypatch.setattr(breaker_mod.invalidation, "listening", lambda: False)
    monkeypatch.setattr(breaker_mod.invalidation, "channel", lambda: "test:breaker:nobody-listens")
    model = model_id()
    this, other = breaker_mod.Breaker(local_seconds=60), breaker_mod.Breaker(local_seconds=0)
    assert this.allow(model).allowed
    for _ in range(5):
        other.record_failure(other.allow(model))
    assert not other.allow(model).allowed
    assert this.allow(model).allowed  # still inside its window: no round trip, trusted closed
    this.record_failure(breaker_mod.Ticket(model=model, state=breaker_mod.BreakerState.CLOSED))
    assert not this.allow(model).allowed  # its own failure ends the trust: Redis says open


def _wait(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "waited in vain"
        time.sleep(0.01)


def test_an_opening_anywhere_reaches_a_listening_process_at_once(model_id, clock):
    """The script that opens a circuit publishes it: a process trusting that circuit closed (far inside its
    local window) asks Redis again as soon as its invalidation listener hears it."""
    _wait(invalidation.listening)
    model = model_id()
    this, other = breaker_mod.Breaker(local_seconds=60), breaker_mod.Breaker(clock=clock, local_seconds=0)
    assert this.allow(model).allowed
    heard = invalidation.heard("breaker")
    open_circuit(other, model)
    _wait(lambda: invalidation.heard("breaker") > heard)
    assert not this.allow(model).allowed


@pytest.mark.parametrize("side", ["sync", "async"])
def test_every_opening_is_published_with_it_a_failed_probe_s_too(model_id, clock, side):
    """Workers fail calls on the sync side, web processes on the async one: the same script, both sent."""
    model = model_id()
    other = breaker_mod.Breaker(clock=clock, local_seconds=0)

    def failed_call() -> BreakerState | None:
        if side == "sync":
            return other.record_failure(other.allow(model))

        async def call() -> BreakerState | None:
            try:
                return await other.arecord_failure(await other.aallow(model))
            finally:
                await redisconn.aclose()

        return asyncio.run(call())

    pubsub = redisconn.subscriber()
    pubsub.subscribe(invalidation.channel())
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    try:
        assert [failed_call(), failed_call()] == [BreakerState.CLOSED] * 2
        assert pubsub.get_message(timeout=0.2) is None  # failures below the threshold: nothing to tell
        assert failed_call() is BreakerState.OPEN
        assert pubsub.get_message(timeout=5)["data"] == b"breaker"
        clock.advance(31)  # past the cooldown: the next call probes, and fails
        assert failed_call() is BreakerState.OPEN
        assert pubsub.get_message(timeout=5)["data"] == b"breaker"
    finally:
        pubsub.close()


def test_a_listening_process_trusts_a_closed_circuit_past_its_local_window_up_to_its_bound(model_id, monkeypatch):
    """No opening heard: the circuit is still closed everywhere, so no round trip after the local window,
    until _HEARD_TRUST_SECONDS (which bounds an opening whose message never came)."""
    _wait(invalidation.listening)
    model = model_id()
    real, reads = breaker_mod._sync, []

    def counting() -> breaker_mod._Conn:
        reads.append(1)
        return real()

    monkeypatch.setattr(breaker_mod, "_sync", counting)
    monkeypatch.setattr(breaker_mod, "_HEARD_TRUST_SECONDS", 0.3)
    this = breaker_mod.Breaker(local_seconds=0.05)
    assert this.allow(model).allowed and len(reads) == 1
    time.sleep(0.1)  # past the local window, inside the listener's bound
    assert this.allow(model).allowed and len(reads) == 1
    time.sleep(0.3)  # past the bound: asked again
    assert this.allow(model).allowed and len(reads) == 2


def test_with_no_local_window_every_call_asks_redis(model_id):
    model = model_id()
    this, other = breaker_mod.Breaker(local_seconds=0), breaker_mod.Breaker(local_seconds=0)
    assert this.allow(model).allowed
    for _ in range(5):
        other.record_failure(other.allow(model))
    assert not this.allow(model).allowed


@pytest.fixture
def redis_away(settings):
    real_redis_url = settings.REDIS_URL
    settings.REDIS_URL = "redis://127.0.0.1:1/4"  # nothing listens on port 1
    breaker_mod.reset_connections()
    yield
    settings.REDIS_URL = real_redis_url
    breaker_mod.reset_connections()


@pytest.mark.parametrize("side", ["sync", "async"])
def test_with_redis_away_the_process_keeps_protecting_with_its_own_circuit(redis_away, breaker, clock, side):
    """Redis unreachable (down, or too slow for a lagging loop): the failures this process saw open its
    own circuit at the same threshold; after the cooldown one call probes; its success closes it."""
    model = f"test-model-local-{side}"

    def allow() -> breaker_mod.Ticket:
        if side == "sync":
            return breaker.allow(model)
        return asyncio.run(_aallow_and_close(breaker, model))

    def record(ticket: breaker_mod.Ticket, ok: bool) -> BreakerState | None:
        if side == "sync":
            return breaker.record_success(ticket) if ok else breaker.record_failure(ticket)
        coro = breaker.arecord_success(ticket) if ok else breaker.arecord_failure(ticket)
        return asyncio.run(coro)

    assert record(allow(), ok=False) is BreakerState.CLOSED
    assert record(allow(), ok=False) is BreakerState.CLOSED
    assert record(allow(), ok=False) is BreakerState.OPEN  # the threshold (3 in these tests)
    assert not allow().allowed
    clock.advance(30)
    probe = allow()
    assert probe.allowed and probe.state is BreakerState.HALF_OPEN
    assert not allow().allowed  # one probe at a time
    assert record(probe, ok=False) is BreakerState.OPEN  # a failed probe: another cooldown
    assert not allow().allowed
    clock.advance(30)
    record(allow(), ok=True)
    assert allow().allowed and allow().allowed


def test_with_redis_away_a_model_that_did_not_fail_here_is_never_refused(redis_away, breaker, clock):
    for _ in range(3):
        breaker.record_failure(breaker.allow("test-model-failing"))
    assert not breaker.allow("test-model-failing").allowed
    assert breaker.allow("test-model-healthy").allowed


def test_a_probe_released_without_a_verdict_lets_the_next_call_probe(redis_away, breaker, clock):
    model = "test-model-released"
    for _ in range(3):
        breaker.record_failure(breaker.allow(model))
    clock.advance(30)
    probe = breaker.allow(model)
    breaker.release(probe)
    assert breaker.allow(model).state is BreakerState.HALF_OPEN


def test_callers_that_arrive_together_share_one_read_of_a_closed_circuit(model_id, monkeypatch):
    """2,000 streams opened at once must not send 2,000 reads (they ran the Redis pool dry): while one
    read is on its way, the others wait for it and share its CLOSED answer. The read itself is real
    (Redis); the spy only counts how often it is sent."""
    model, reads = model_id(), []
    real = breaker_mod._async

    def counting() -> breaker_mod._Conn:
        reads.append(1)
        return real()

    monkeypatch.setattr(breaker_mod, "_async", counting)
    this = breaker_mod.Breaker(local_seconds=60)

    async def together() -> list[breaker_mod.Ticket]:
        try:
            return await asyncio.gather(*(this.aallow(model) for _ in range(50)))
        finally:
            await breaker_mod.aclose_connections()

    tickets = asyncio.run(together())
    assert all(t.state is BreakerState.CLOSED and t.probe_id is None for t in tickets) and len(reads) == 1


def test_callers_that_arrive_together_at_a_half_open_circuit_each_ask_for_a_probe(breaker, model_id, clock):
    """Only a CLOSED answer is shared: after the cooldown each caller asks for itself, so the probe
    slots stay one per caller (exactly `half_open_probes` of them go through)."""
    model = model_id()
    open_circuit(breaker, model)
    clock.advance(30)

    async def together() -> list[breaker_mod.Ticket]:
        try:
            return await asyncio.gather(*(breaker.aallow(model) for _ in range(10)))
        finally:
            await breaker_mod.aclose_connections()

    tickets = asyncio.run(together())
    probes = [t for t in tickets if t.allowed]
    assert len(probes) == 1 and probes[0].state is BreakerState.HALF_OPEN and probes[0].probe_id
