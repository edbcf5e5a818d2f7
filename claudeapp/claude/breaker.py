"""Circuit breaker per model, its state in Redis so every web and worker process shares it.

CLOSED -> OPEN after `failure_threshold` breaker-worthy failures (5xx/529/timeouts/connection;
never 4xx, and 429 belongs to the limiter) within `window_seconds`. OPEN rejects locally for
`cooldown_seconds`, then HALF_OPEN admits at most `half_open_probes` calls at once across all
processes; a probe's success closes the circuit, its failure re-opens it.

Each transition is one Lua script, so processes never race each other. `allow()` is the only
call on the hot path: one round trip while closed, nothing on success; and a process that found a
circuit closed less than CLAUDE_BREAKER_LOCAL_SECONDS ago, with no failure of its own since, trusts
that instead of asking again. The script that opens a circuit publishes it on the processes'
invalidation channel (claudeapp/core/invalidation.py): a process that hears it asks Redis again at
once, and while its listener is heard it trusts a closed circuit for up to _HEARD_TRUST_SECONDS with
no message since. Without the listener another process's opening reaches it within the local window.

When Redis cannot answer (down, or too slow for REDIS_TIMEOUT_SECONDS, as in a process whose event
loop lags under thousands of streams), each process keeps protecting with its own circuit: the same
policy over the failures it saw itself (threshold in the window opens it for the cooldown, then one
call at a time probes). It never refuses because Redis is away, only because this process saw the
model fail: losing Redis must not take Claude down, nor leave a failing model unprotected.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings
from django.utils.module_loading import import_string

from claudeapp.core import invalidation, redisconn
from claudeapp.core.singleflight import SingleFlight

logger = logging.getLogger(__name__)


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int
    window_seconds: float
    cooldown_seconds: float
    half_open_probes: int
    probe_lease_seconds: float


@dataclass(frozen=True)
class Ticket:
    """Permission to make one call. A probe must report back so the circuit can close."""

    model: str
    state: BreakerState
    probe_id: str | None = None

    @property
    def allowed(self) -> bool:
        return self.state is not BreakerState.OPEN


@dataclass(frozen=True)
class BreakerStatus:
    model: str
    state: BreakerState
    failures: int
    opened_at: float | None
    probes_in_flight: int


# KEYS: hash, probes zset. ARGV: now, cooldown, max probes, lease, probe id.
# The probe set holds leases so a process that died mid-probe frees its slot after `lease`.
_ALLOW = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'closed' then return {'closed', 0} end
local now = tonumber(ARGV[1])
if state == 'open' then
  if now - tonumber(redis.call('HGET', KEYS[1], 'opened_at') or '0') < tonumber(ARGV[2]) then
    return {'open', 0}
  end
  redis.call('HSET', KEYS[1], 'state', 'half_open')
  redis.call('DEL', KEYS[2])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[4]))
if redis.call('ZCARD', KEYS[2]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[2], now, ARGV[5])
  return {'half_open', 1}
end
return {'open', 0}
"""

# KEYS: hash, probes zset. ARGV: probe id.
_SUCCESS = """
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 and redis.call('HGET', KEYS[1], 'state') == 'half_open' then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 'closed'
end
return redis.call('HGET', KEYS[1], 'state') or 'closed'
"""

# KEYS: hash, probes zset. ARGV: now, threshold, window, probe id ('' when not a probe), the invalidation
# channel and the breaker's topic there (an opening is published in the same script: never one without the other).
_FAILURE = """
local now = tonumber(ARGV[1])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'half_open' then
  if ARGV[4] == '' or redis.call('ZREM', KEYS[2], ARGV[4]) == 0 then return state end
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now, 'failures', 0)
  redis.call('DEL', KEYS[2])
  redis.call('PUBLISH', ARGV[5], ARGV[6])
  return 'open'
end
if state == 'open' then return state end
local started = tonumber(redis.call('HGET', KEYS[1], 'window_start') or '0')
local failures = 1
if now - started > tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'window_start', now, 'failures', 1)
else
  failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
end
if failures >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now, 'failures', 0)
  redis.call('PUBLISH', ARGV[5], ARGV[6])
  return 'open'
end
return 'closed'
"""

# Openings counted by this process's listener (any model's: they are rare): a closed circuit seen before
# the last one is asked again.
_TOPIC = invalidation.register("breaker")
# The longest a closed circuit is trusted on the listener's word alone: bounds how late an opening whose
# message never came (a process still running scripts without it, during a deploy) is seen.
_HEARD_TRUST_SECONDS = 30.0


@dataclass(frozen=True)
class _Trust:
    """A circuit this process saw closed: trusted until `until`, or while its listener is heard (no opening
    since `heard`, the count of openings when it was read) until `heard_until`."""

    until: float
    heard_until: float
    heard: int


def default_policy(model: str) -> BreakerPolicy:
    return BreakerPolicy(
        failure_threshold=settings.CLAUDE_BREAKER_FAILURE_THRESHOLD,
        window_seconds=settings.CLAUDE_BREAKER_WINDOW_SECONDS,
        cooldown_seconds=settings.CLAUDE_BREAKER_COOLDOWN_SECONDS,
        half_open_probes=settings.CLAUDE_BREAKER_HALF_OPEN_PROBES,
        probe_lease_seconds=settings.CLAUDE_BREAKER_PROBE_LEASE_SECONDS,
    )


def policy_for(model: str) -> BreakerPolicy:
    """Thresholds for one model: a per-model provider (e.g. an admin-edited table) or settings."""
    provider_path = getattr(settings, "CLAUDE_BREAKER_POLICY_PROVIDER", "")
    if provider_path:
        provider: Callable[[str], BreakerPolicy | None] = import_string(provider_path)
        policy = provider(model)
        if policy is not None:
            return policy
    return default_policy(model)


@dataclass(frozen=True)
class _Conn:
    """A Redis client and the scripts registered on it (sent by SHA: EVALSHA, EVAL on a cold server)."""

    client: redis.Redis | aioredis.Redis
    allow: Any
    success: Any
    failure: Any

    @classmethod
    def of(cls, client: redis.Redis | aioredis.Redis) -> _Conn:
        scripts = [client.register_script(src) for src in (_ALLOW, _SUCCESS, _FAILURE)]
        return cls(client, *scripts)


def _sync() -> _Conn:
    client = redisconn.client()
    conn = _sync_by_client.get(id(client))
    if conn is None or conn.client is not client:
        conn = _sync_by_client[id(client)] = _Conn.of(client)
    return conn


_sync_by_client: dict[int, _Conn] = {}
# Scripts registered on the running loop's client (an asyncio client belongs to its loop).
_async_by_loop: dict[asyncio.AbstractEventLoop, _Conn] = {}


def _async() -> _Conn:
    client = redisconn.aclient()
    loop = asyncio.get_running_loop()
    conn = _async_by_loop.get(loop)
    if conn is None or conn.client is not client:
        for ended in [other for other in _async_by_loop if other.is_closed()]:
            _async_by_loop.pop(ended, None)
        conn = _async_by_loop[loop] = _Conn.of(client)
    return conn


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_last_outage_log = 0.0


def _warn_unavailable(action: str, model: str, exc: Exception) -> None:
    """Log a Redis outage at most every 10 s per process: every request would otherwise log it."""
    global _last_outage_log
    now = time.monotonic()
    if now - _last_outage_log >= 10:
        _last_outage_log = now
        logger.warning("breaker: redis unavailable (%s %s), using this process's own circuit: %s", action, model, exc)
    else:
        logger.debug("breaker: redis unavailable (%s %s): %s", action, model, exc)


class _LocalCircuit:
    """One model's circuit over this process's own failures: the judge while Redis cannot answer."""

    def __init__(self) -> None:
        self.failures: deque[float] = deque()
        self.open_until = 0.0
        self.probing = False

    def failed(self, policy: BreakerPolicy, now: float) -> None:
        self.probing = False
        self.failures.append(now)
        while self.failures and self.failures[0] <= now - policy.window_seconds:
            self.failures.popleft()
        if len(self.failures) >= policy.failure_threshold or self.open_until:
            self.open_until = now + policy.cooldown_seconds  # opened, or a failed probe re-opens it
            self.failures.clear()

    def succeeded(self) -> None:
        self.open_until, self.probing = 0.0, False

    def ticket(self, model: str, now: float) -> Ticket:
        if not self.open_until:
            return Ticket(model=model, state=BreakerState.CLOSED)
        if now < self.open_until or self.probing:
            return Ticket(model=model, state=BreakerState.OPEN)
        self.probing = True  # after the cooldown, one call at a time finds out
        return Ticket(model=model, state=BreakerState.HALF_OPEN, probe_id=f"{_LOCAL_PROBE}{uuid.uuid4().hex}")


_LOCAL_PROBE = "local-"


def _is_local(ticket: Ticket) -> bool:
    return bool(ticket.probe_id and ticket.probe_id.startswith(_LOCAL_PROBE))


async def aclose_connections() -> None:
    """Close this loop's Redis pool (see client.aclose_async_client for why)."""
    _async_by_loop.pop(asyncio.get_running_loop(), None)
    await redisconn.aclose()


def reset_connections() -> None:
    _sync_by_client.clear()
    _async_by_loop.clear()
    redisconn.reset()
    default_breaker.forget()


def _keys(model: str) -> list[str]:
    base = f"{settings.CLAUDE_BREAKER_KEY_PREFIX}:{model}"
    return [base, f"{base}:probes"]


class Breaker:
    """The breaker for all models. `clock` is injectable so tests can move time without sleeping.

    `local_seconds` (default CLAUDE_BREAKER_LOCAL_SECONDS): how long this process trusts a closed
    circuit it has seen without asking Redis again; 0 asks every time."""

    def __init__(self, *, clock: Callable[[], float] = time.time, local_seconds: float | None = None) -> None:
        self.clock = clock
        self.local_seconds = local_seconds
        self._closed: dict[str, _Trust] = {}  # model -> the closed circuit this process trusts
        self._local: dict[str, _LocalCircuit] = {}  # model -> this process's own circuit (see the module doc)
        self._reading: SingleFlight[Ticket] = SingleFlight()  # one read of a circuit at a time per loop

    def _circuit(self, model: str) -> _LocalCircuit:
        circuit = self._local.get(model)
        if circuit is None:
            circuit = self._local[model] = _LocalCircuit()
        return circuit

    def _locally(self, model: str, exc: Exception) -> Ticket:
        _warn_unavailable("allowing", model, exc)
        return self._circuit(model).ticket(model, self.clock())

    def _saw_failure(self, ticket: Ticket) -> BreakerPolicy:
        self._closed.pop(ticket.model, None)  # ask Redis again from the next call on
        policy = policy_for(ticket.model)
        self._circuit(ticket.model).failed(policy, self.clock())
        return policy

    def _local_verdict(self, ticket: Ticket, *, success: bool | None) -> bool:
        """A probe this process's own circuit granted: settle it here (Redis never knew of it)."""
        if not _is_local(ticket):
            return False
        circuit = self._circuit(ticket.model)
        if success:
            circuit.succeeded()
        elif success is None:
            circuit.probing = False
        return True

    def _trusted_closed(self, model: str) -> bool:
        trust = self._closed.get(model)
        if trust is None or trust.heard != invalidation.heard(_TOPIC):  # an opening somewhere since: ask again
            return False
        now = time.monotonic()
        return now < trust.until or (now < trust.heard_until and invalidation.listening())

    def _saw(self, ticket: Ticket, heard: int) -> Ticket:
        """`heard`: the count of openings heard when the read was sent (one heard meanwhile voids it)."""
        seconds = settings.CLAUDE_BREAKER_LOCAL_SECONDS if self.local_seconds is None else self.local_seconds
        if ticket.state is BreakerState.CLOSED and seconds > 0:
            now = time.monotonic()
            self._closed[ticket.model] = _Trust(now + seconds, now + max(seconds, _HEARD_TRUST_SECONDS), heard)
        else:
            self._closed.pop(ticket.model, None)
        return ticket

    # --- sync (Celery workers, management commands) ---

    def allow(self, model: str) -> Ticket:
        if self._trusted_closed(model):
            return Ticket(model=model, state=BreakerState.CLOSED)
        policy, probe_id, heard = policy_for(model), uuid.uuid4().hex, invalidation.heard(_TOPIC)
        try:
            state, granted = _sync().allow(keys=_keys(model), args=self._allow_args(policy, probe_id))
        except (redis.RedisError, *redisconn.UNAVAILABLE) as exc:
            return self._locally(model, exc)
        return self._saw(self._ticket(model, state, granted, probe_id), heard)

    def record_success(self, ticket: Ticket) -> None:
        if ticket.probe_id is None or self._local_verdict(ticket, success=True):
            return  # a success while closed changes nothing: no round trip
        try:
            _sync().success(keys=_keys(ticket.model), args=[ticket.probe_id])
        except (redis.RedisError, *redisconn.UNAVAILABLE) as exc:
            _warn_unavailable("recording success for", ticket.model, exc)

    def record_failure(self, ticket: Ticket) -> BreakerState:
        policy = self._saw_failure(ticket)
        if self._local_verdict(ticket, success=False):
            return self._local_state(ticket.model)
        try:
            state = _sync().failure(keys=_keys(ticket.model), args=self._failure_args(ticket, policy))
        except (redis.RedisError, *redisconn.UNAVAILABLE) as exc:
            _warn_unavailable("recording failure for", ticket.model, exc)
            return self._local_state(ticket.model)
        return self._log_state(ticket, state)

    def release(self, ticket: Ticket) -> None:
        """Give a probe slot back without a verdict (the caller went away mid-call)."""
        if ticket.probe_id is None or self._local_verdict(ticket, success=None):
            return
        try:
            _sync().client.zrem(_keys(ticket.model)[1], ticket.probe_id)
        except (redis.RedisError, *redisconn.UNAVAILABLE) as exc:
            _warn_unavailable("releasing probe for", ticket.model, exc)

    def state(self, model: str) -> BreakerStatus:
        try:
            pipe = _sync().client.pipeline(transaction=False)
            pipe.hgetall(_keys(model)[0])
            pipe.zcard(_keys(model)[1])
            data, probes = pipe.execute()
        except (redis.RedisError, *redisconn.UNAVAILABLE) as exc:
            _warn_unavailable("reading state of", model, exc)
            data, probes = {}, 0
        return self._status(model, data, probes)

    def reset(self, model: str) -> None:
        """Close the circuit by hand (admin action, tests)."""
        self._closed.pop(model, None)
        self._local.pop(model, None)
        _sync().client.delete(*_keys(model))

    def forget(self) -> None:
        """Drop what this process trusts locally (tests that open circuits behind its back)."""
        self._closed.clear()
        self._local.clear()

    # --- async (ASGI views) ---

    async def aallow(self, model: str) -> Ticket:
        """One read of a model's circuit at a time per event loop (core/singleflight.py): callers that
        arrive while it is on its way share a CLOSED answer; any other answer is theirs to ask for
        themselves (probe slots are one per caller)."""
        if self._trusted_closed(model):
            return Ticket(model=model, state=BreakerState.CLOSED)
        ticket, shared = await self._reading.run(model, lambda: self._aallow(model))
        if shared and not (ticket.state is BreakerState.CLOSED and ticket.probe_id is None):
            return await self._aallow(model)
        return ticket

    async def _aallow(self, model: str) -> Ticket:
        policy, probe_id, heard = policy_for(model), uuid.uuid4().hex, invalidation.heard(_TOPIC)
        try:
            state, granted = await _async().allow(keys=_keys(model), args=self._allow_args(policy, probe_id))
        except (redis.RedisError, *redisconn.UNAVAILABLE) as exc:
            return self._locally(model, exc)
        return self._saw(self._ticket(model, state, granted, probe_id), heard)

    async def arecord_success(self, ticket: Ticket) -> None:
        if ticket.probe_id is None or self._local_verdict(ticket, success=True):
            return
        try:
            await _async().success(keys=_keys(ticket.model), args=[ticket.probe_id])
        except (redis.RedisError, *redisconn.UNAVAILABLE) as exc:
            _warn_unavailable("recording success for", ticket.model, exc)

    async def arecord_failure(self, ticket: Ticket) -> BreakerState:
        policy = self._saw_failure(ticket)
        if self._local_verdict(ticket, success=False):
            return self._local_state(ticket.model)
        try:
            state = await _async().failure(keys=_keys(ticket.model), args=self._failure_args(ticket, policy))
        except (redis.RedisError, *redisconn.UNAVAILABLE) as exc:
            _warn_unavailable("recording failure for", ticket.model, exc)
            return self._local_state(ticket.model)
        return self._log_state(ticket, state)

    async def arelease(self, ticket: Ticket) -> None:
        if ticket.probe_id is None or self._local_verdict(ticket, success=None):
            return
        try:
            await _async().client.zrem(_keys(ticket.model)[1], ticket.probe_id)
        except (redis.RedisError, *redisconn.UNAVAILABLE) as exc:
            _warn_unavailable("releasing probe for", ticket.model, exc)

    # --- shared helpers ---

    def _allow_args(self, policy: BreakerPolicy, probe_id: str) -> list[object]:
        now = self.clock()
        return [now, policy.cooldown_seconds, policy.half_open_probes, policy.probe_lease_seconds, probe_id]

    def _failure_args(self, ticket: Ticket, policy: BreakerPolicy) -> list[object]:
        return [
            self.clock(), policy.failure_threshold, policy.window_seconds, ticket.probe_id or "",
            invalidation.channel(), _TOPIC,
        ]  # fmt: skip

    @staticmethod
    def _ticket(model: str, state: Any, granted: int, probe_id: str) -> Ticket:
        if _text(state) == "closed":
            return Ticket(model=model, state=BreakerState.CLOSED)
        if granted:
            return Ticket(model=model, state=BreakerState.HALF_OPEN, probe_id=probe_id)
        return Ticket(model=model, state=BreakerState.OPEN)

    def _local_state(self, model: str) -> BreakerState:
        circuit = self._circuit(model)
        return BreakerState.OPEN if circuit.open_until else BreakerState.CLOSED

    @staticmethod
    def _log_state(ticket: Ticket, state: Any) -> BreakerState:
        new_state = BreakerState(_text(state))
        if new_state is BreakerState.OPEN and ticket.state is not BreakerState.OPEN:
            logger.warning("breaker: circuit for %s is open", ticket.model)
        return new_state

    def _status(self, model: str, raw: dict[Any, Any], probes: int) -> BreakerStatus:
        data = {_text(k): _text(v) for k, v in raw.items()}
        state = BreakerState(data.get("state", "closed"))
        opened_at = float(data["opened_at"]) if "opened_at" in data else None
        cooled = opened_at is not None and self.clock() - opened_at >= policy_for(model).cooldown_seconds
        if state is BreakerState.OPEN and cooled:
            state = BreakerState.HALF_OPEN  # the next call will probe: report what it will see
        return BreakerStatus(
            model=model,
            state=state,
            failures=int(data.get("failures", 0)),
            opened_at=opened_at if state is not BreakerState.CLOSED else None,
            probes_in_flight=probes,
        )


default_breaker = Breaker()


def state(model_id: str) -> BreakerStatus:
    """Circuit state of one model, for the admin and dashboards."""
    return default_breaker.state(model_id)


def reset(model_id: str) -> None:
    default_breaker.reset(model_id)
