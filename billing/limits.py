"""Gateway rate limits: requests, input and output tokens per minute, and concurrent requests.

One Redis Lua call (limits.lua) checks and takes every bucket that applies to a principal and a
model, so the decision is atomic across all processes. Redis unreachable: limits fail open (logged)
unless BILLING_RATE_LIMIT_FAIL_OPEN is off; budgets, in Postgres, are the hard stop for money.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from billing import redisconn
from billing.costs import Usage
from billing.errors import LimiterUnavailable, RateLimited
from billing.models import RateLimitPolicy
from claudeapp.accounts.principals import Principal

log = logging.getLogger(__name__)

_SCRIPT_SOURCE = (Path(__file__).parent / "limits.lua").read_text()
_scripts: dict[int, object] = {}
_last_outage_log = [0.0]

# Policy field -> bucket axis; the axis decides what one request costs in that bucket.
_AXES = {
    "requests_per_minute": "requests",
    "input_tokens_per_minute": "input-tokens",
    "output_tokens_per_minute": "output-tokens",
}
Policies = list[RateLimitPolicy]
_policies = redisconn.cached("ratelimits", lambda: list(RateLimitPolicy.objects.filter(enabled=True)))


@dataclass(frozen=True)
class Bucket:
    key: str
    axis: str
    limit: int
    cost: int


@dataclass
class LimitTicket:
    id: str
    buckets: list[Bucket] = field(default_factory=list)
    concurrency_keys: list[str] = field(default_factory=list)
    limit_headers: dict[str, str] = field(default_factory=dict)
    degraded: bool = False  # Redis was down and the limiter failed open

    def headers(self) -> dict[str, str]:
        """x-ratelimit-{limit,remaining,reset}-{requests,tokens,input-tokens,output-tokens}; reset in seconds."""
        return dict(self.limit_headers)


def policies() -> Policies:
    """The enabled policies (the per-process copy)."""
    return _policies.get()


def applicable(principal: Principal, model_id: str, policies: Policies) -> Policies:
    """The policies covering this principal and model; `default` only when it has none of its own."""
    own = {("user", principal.user_id)}
    if principal.kind == "partner_key":
        own.add(("partner_key", principal.id))
    groups = {("group", g) for g in principal.group_ids}
    matching = [p for p in policies if p.model_id in ("", model_id)]
    chosen = [p for p in matching if (p.scope, p.scope_id) in own | groups or p.scope in ("global", "model")]
    if not any((p.scope, p.scope_id) in own for p in chosen):
        chosen += [p for p in matching if p.scope == "default"]
    return sorted(chosen, key=lambda p: p.pk)


def _buckets(principal: Principal, policies: Policies, input_tokens: int, max_tokens: int) -> tuple[list, list]:
    cost = {"requests": 1, "input-tokens": input_tokens, "output-tokens": max_tokens}
    rate: list[Bucket] = []
    concurrency: list[tuple[str, int]] = []
    for p in policies:
        owner = principal.key if p.scope == "default" else ""  # default: one bucket per principal
        for attr, axis in _AXES.items():
            if getattr(p, attr):
                rate.append(Bucket(redisconn.key("rl", p.pk, owner, axis), axis, getattr(p, attr), cost[axis]))
        if p.concurrent_requests:
            concurrency.append((redisconn.key("rl", p.pk, owner, "concurrent"), p.concurrent_requests))
    return rate, concurrency


def _script():  # type: ignore[no-untyped-def]
    client = redisconn.client()
    found = _scripts.get(id(client))
    if found is None:
        found = _scripts[id(client)] = client.register_script(_SCRIPT_SOURCE)
    return found


def acquire(*, principal: Principal, model_id: str, input_tokens: int, max_tokens: int) -> LimitTicket:
    """Take one request, its input estimate and max_tokens from every applicable bucket, or raise RateLimited."""
    return _take(principal=principal, model_id=model_id, input_tokens=input_tokens, max_tokens=max_tokens)


def _take(**asking: Any) -> LimitTicket:
    """`ask(**asking)` in a round trip of its own (Redis unreachable, even while reading the policies: the
    outage rule)."""
    try:
        asked = ask(**asking)
        if asked.nothing_to_take:
            return asked.ticket
        result = _script()(keys=asked.keys, args=asked.args)
    except redisconn.UNAVAILABLE as exc:
        return _limiter_down(LimitTicket(id=uuid.uuid4().hex), exc)
    return asked.answer(result)


@dataclass
class Ask:
    """One acquire's buckets and script arguments, and how its reply becomes a ticket."""

    ticket: LimitTicket
    rate: list[Bucket]
    concurrency: list[tuple[str, int]]
    policies: Policies
    keys: list[str]
    args: list[object]

    @property
    def nothing_to_take(self) -> bool:
        return not self.rate and not self.concurrency

    def queue_on(self, pipe: Any) -> int:
        """The script on `pipe`; how many replies it adds there (none when no bucket applies)."""
        if self.nothing_to_take:
            return 0
        pipe.evalsha(_script().sha, len(self.keys), *self.keys, *self.args)
        return 1

    def read(self, reply: object) -> LimitTicket:
        if self.nothing_to_take:
            return self.ticket
        if reply is None or isinstance(reply, redisconn.UNAVAILABLE):
            return _limiter_down(self.ticket, reply or ConnectionError("Redis unreachable"))
        if isinstance(reply, redis.exceptions.NoScriptError):  # Redis restarted or flushed: load and run
            try:
                reply = _script()(keys=self.keys, args=self.args)
            except redisconn.UNAVAILABLE as exc:
                return _limiter_down(self.ticket, exc)
        elif isinstance(reply, Exception):
            raise reply
        return self.answer(reply)

    def answer(self, result: Any) -> LimitTicket:
        allowed, retry_us, *figures = (int(x) for x in result)
        ticket = self.ticket
        ticket.buckets, ticket.concurrency_keys = self.rate, [k for k, _ in self.concurrency]
        ticket.limit_headers = _headers(self.rate, figures)
        if not allowed:
            raise _refused(retry_us, ticket.limit_headers, self.rate, self.concurrency, figures, self.policies)
        return ticket


def ask(*, principal: Principal, model_id: str, input_tokens: int, max_tokens: int, tokens_only: bool = False) -> Ask:
    """`acquire`'s buckets and script arguments, for `_take` or a caller's own pipeline: `.queue_on(pipe)` puts
    it in that round trip, `.read(reply)` with the script's reply (None: Redis unreachable, or never sent)
    gives the ticket or raises what `acquire` would. `tokens_only`: `acquire_tokens`'s (no request, no
    concurrency slot, no lease)."""
    ticket = LimitTicket(id=uuid.uuid4().hex)
    policies = applicable(principal, model_id, _policies.get())
    rate, concurrency = _buckets(principal, policies, input_tokens, max_tokens)
    if tokens_only:
        rate, concurrency = [b for b in rate if b.axis != "requests"], []
    lease_us = 0 if tokens_only else settings.BILLING_CONCURRENCY_LEASE_SECONDS * 1_000_000
    args: list[object] = ["acquire", len(rate), ticket.id, lease_us]
    args += [x for b in rate for x in (b.limit, b.cost)] + [limit for _, limit in concurrency]
    keys = [b.key for b in rate] + [k for k, _ in concurrency]
    return Ask(ticket, rate, concurrency, policies, keys, args)


def _refused(
    retry_us: int, headers: dict[str, str], rate: list[Bucket], concurrency: list, figures: list[int], chosen: Policies
) -> RateLimited:
    """RateLimited naming the bucket that had no room (the one with the longest wait), so the caller
    is told which limit refused: its axis, its size and the policy's scope."""
    axis, limit, key, longest = "", None, "", -1
    for i, bucket in enumerate(rate):
        remaining, reset_us = figures[2 * i], figures[2 * i + 1]
        if remaining < bucket.cost and reset_us > longest:
            axis, limit, key, longest = bucket.axis, bucket.limit, bucket.key, reset_us
    for j, (conc_key, conc_limit) in enumerate(concurrency):
        if not axis and figures[2 * len(rate) + j] >= conc_limit:
            axis, limit, key = "concurrent", conc_limit, conc_key
    scope = next((p.scope for p in chosen if key.startswith(redisconn.key("rl", p.pk, ""))), "")
    return RateLimited(
        retry_after_seconds=max(retry_us / 1e6, 0.001), headers=headers, axis=axis, scope=scope, limit_value=limit
    )


def acquire_tokens(*, principal: Principal, model_id: str, input_tokens: int, max_tokens: int) -> LimitTicket:
    """Take only the token part of every applicable bucket, or raise RateLimited: for work that is not
    one request of its own, such as a request inside a Message Batch (the batch is one create call).
    No request slot and no concurrency slot are taken, so the ticket needs no finish()."""
    return _take(
        principal=principal, model_id=model_id, input_tokens=input_tokens, max_tokens=max_tokens, tokens_only=True
    )


def _headers(rate: list[Bucket], figures: list[int]) -> dict[str, str]:
    """Per axis, the most constraining bucket; `tokens` is the tighter of input and output."""
    tightest: dict[str, tuple[int, int, int]] = {}
    for i, bucket in enumerate(rate):
        remaining, reset_us = figures[2 * i], figures[2 * i + 1]
        for axis in (bucket.axis, "tokens") if bucket.axis != "requests" else (bucket.axis,):
            if axis not in tightest or remaining < tightest[axis][1]:
                tightest[axis] = (bucket.limit, remaining, reset_us)
    headers = {}
    for axis, (limit, remaining, reset_us) in tightest.items():
        headers[f"x-ratelimit-limit-{axis}"] = str(limit)
        headers[f"x-ratelimit-remaining-{axis}"] = str(remaining)
        headers[f"x-ratelimit-reset-{axis}"] = str(math.ceil(reset_us / 1e6))
    return headers


def _limiter_down(ticket: LimitTicket, exc: Exception) -> LimitTicket:
    now = time.monotonic()
    if now - _last_outage_log[0] > 10:  # one line per 10 s, not one per request
        _last_outage_log[0] = now
        log.warning("billing: rate limiter unavailable (%s); failing %s", exc, _mode())
    if not settings.BILLING_RATE_LIMIT_FAIL_OPEN:
        raise LimiterUnavailable() from exc
    ticket.degraded = True
    return ticket


def _mode() -> str:
    return "open" if settings.BILLING_RATE_LIMIT_FAIL_OPEN else "closed"


def finish(*, ticket: LimitTicket, usage: Usage | None, pipe: redisconn.Batch | None = None) -> None:
    """Replace the token estimates with what was used and free the concurrency slot.

    Input counts as Anthropic counts it for ITPM: uncached input plus cache writes (reads are free).
    usage None (the call failed): the output estimate is refunded, the request and input stay taken.
    With `pipe` (redisconn.batch) the write is only queued there.
    """
    if ticket.degraded or not (ticket.buckets or ticket.concurrency_keys):
        return
    actual = {
        "requests": 1,
        "input-tokens": usage.input_tokens + usage.cache_write_5m_tokens + usage.cache_write_1h_tokens
        if usage
        else None,
        "output-tokens": usage.output_tokens if usage else 0,
    }
    args: list[object] = ["finish", len(ticket.buckets), ticket.id]
    for b in ticket.buckets:
        used = actual[b.axis]
        args += [b.limit, 0 if used is None else used - b.cost]
    keys = [b.key for b in ticket.buckets] + ticket.concurrency_keys
    if pipe is not None:
        pipe.script(_script(), keys=keys, args=args)
        return
    try:
        _script()(keys=keys, args=args)
    except redisconn.UNAVAILABLE as exc:
        log.warning("billing: could not finish rate-limit ticket (%s); slots expire with their lease", exc)


@receiver(post_save, sender=RateLimitPolicy)
@receiver(post_delete, sender=RateLimitPolicy)
def _policies_changed(**kwargs: object) -> None:
    transaction.on_commit(_policies.bump)
