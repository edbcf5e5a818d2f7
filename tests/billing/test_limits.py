from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django.test import override_settings

from billing import limits
from billing.costs import Usage
from billing.errors import LimiterUnavailable, RateLimited

MODEL = "claude-sonnet-5-5"
ROOT = Path(__file__).resolve().parents[2]


def _acquire(principal, input_tokens=10, max_tokens=10, model_id=MODEL):
    return limits.acquire(principal=principal, model_id=model_id, input_tokens=input_tokens, max_tokens=max_tokens)


def _worker(requests: int, user_id: int) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DB_POOL_MAX_SIZE": "4",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.billing.limits_worker", str(requests), str(user_id), MODEL],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.mark.django_db(transaction=True)
def test_a_hundred_requests_from_two_processes_against_10_rpm_admit_exactly_ten(principal_factory, policy_factory):
    principal = principal_factory()
    policy_factory(scope="user", scope_id=principal.user_id, requests_per_minute=10)
    workers = [_worker(50, principal.user_id), _worker(50, principal.user_id)]
    try:
        for w in workers:
            assert w.stdout.readline().strip() == "ready"
        for w in workers:
            w.stdin.write("go\n")
            w.stdin.flush()
        summaries = [json.loads(w.stdout.readline()) for w in workers]
    finally:
        for w in workers:
            w.wait(timeout=30)
    assert sum(s["passed"] for s in summaries) == 10
    retries = [r for s in summaries for r in s["retry_after"]]
    assert len(retries) == 90
    assert all(0 < r <= 6 for r in retries)  # one request frees every 60 s / 10


def test_the_limit_headers_say_what_is_left_and_when_the_bucket_is_full(principal_factory, policy_factory):
    principal = principal_factory()
    policy_factory(scope="user", scope_id=principal.user_id, requests_per_minute=10, input_tokens_per_minute=1000)
    for _ in range(2):
        _acquire(principal, input_tokens=100)
    headers = _acquire(principal, input_tokens=100).headers()
    assert headers["x-ratelimit-limit-requests"] == "10"
    assert headers["x-ratelimit-remaining-requests"] == "7"
    assert headers["x-ratelimit-reset-requests"] == "18"  # three requests of 6 s each to refill
    assert (headers["x-ratelimit-limit-input-tokens"], headers["x-ratelimit-remaining-input-tokens"]) == ("1000", "700")
    assert headers["x-ratelimit-remaining-tokens"] == "700"


def test_input_tokens_per_minute_refuse_the_request_that_would_overflow(principal_factory, policy_factory):
    principal = principal_factory()
    policy_factory(scope="user", scope_id=principal.user_id, input_tokens_per_minute=10_000)
    _acquire(principal, input_tokens=4000)
    _acquire(principal, input_tokens=4000)
    with pytest.raises(RateLimited) as caught:
        _acquire(principal, input_tokens=4000)
    # 2000 tokens short at 10_000 per minute: about 12 s
    assert 11 < caught.value.retry_after_seconds <= 12
    # 2000 left, plus what the bucket refilled meanwhile (166 a second: a slow machine sees a few)
    assert 2000 <= int(caught.value.headers["x-ratelimit-remaining-input-tokens"]) <= 2100
    _acquire(principal, input_tokens=2000)  # what fits still passes


def test_finishing_refunds_unused_output_tokens(principal_factory, policy_factory):
    principal = principal_factory()
    policy_factory(scope="user", scope_id=principal.user_id, output_tokens_per_minute=8000)
    ticket = _acquire(principal, max_tokens=8000)
    with pytest.raises(RateLimited):
        _acquire(principal, max_tokens=4000)
    limits.finish(ticket=ticket, usage=Usage(input_tokens=10, output_tokens=1000))
    _acquire(principal, max_tokens=4000)  # 7000 of the 8000 estimate came back


def test_a_request_larger_than_the_bucket_passes_only_into_an_idle_bucket(principal_factory, policy_factory):
    principal = principal_factory()
    policy_factory(scope="user", scope_id=principal.user_id, input_tokens_per_minute=1000)
    _acquire(principal, input_tokens=5000)  # never fits; refusing it forever would starve the caller
    with pytest.raises(RateLimited) as caught:
        _acquire(principal, input_tokens=1)
    assert caught.value.retry_after_seconds > 200  # it pays its 4000-token debt first


def test_the_concurrency_limit_frees_a_slot_on_finish(principal_factory, policy_factory):
    principal = principal_factory()
    policy_factory(scope="user", scope_id=principal.user_id, concurrent_requests=2)
    first, _second = _acquire(principal), _acquire(principal)
    with pytest.raises(RateLimited):
        _acquire(principal)
    limits.finish(ticket=first, usage=None)
    _acquire(principal)


@override_settings(BILLING_CONCURRENCY_LEASE_SECONDS=1)
def test_a_concurrency_slot_of_a_dead_process_expires_with_its_lease(principal_factory, policy_factory):
    principal = principal_factory()
    policy_factory(scope="user", scope_id=principal.user_id, concurrent_requests=1)
    _acquire(principal)  # never finished: the process "died"
    with pytest.raises(RateLimited):
        _acquire(principal)
    time.sleep(1.2)
    _acquire(principal)


def test_policies_apply_by_scope_and_model(principal_factory, policy_factory):
    own, other = principal_factory(group_ids=frozenset({5})), principal_factory()
    default = policy_factory(scope="default", requests_per_minute=100)
    group = policy_factory(scope="group", scope_id=5, requests_per_minute=50)
    opus_only = policy_factory(scope="model", model_id="claude-opus-5-5", requests_per_minute=20)
    mine = policy_factory(scope="user", scope_id=own.user_id, model_id=MODEL, requests_per_minute=30)
    policies = list(limits._policies.get())
    assert limits.applicable(own, MODEL, policies) == [group, mine]  # own policy replaces the default
    assert limits.applicable(own, "claude-opus-5-5", policies) == [default, group, opus_only]
    assert limits.applicable(other, MODEL, policies) == [default]


def test_the_default_policy_gives_each_principal_its_own_bucket(principal_factory, policy_factory):
    alice, bob = principal_factory(), principal_factory()
    policy_factory(scope="default", requests_per_minute=1)
    _acquire(alice)
    _acquire(bob)
    with pytest.raises(RateLimited):
        _acquire(alice)


def test_with_redis_down_limits_fail_open_or_closed_as_configured(principal_factory, policy_factory, caplog):
    principal = principal_factory()
    policy_factory(scope="user", scope_id=principal.user_id, requests_per_minute=1)
    limits._policies.get()
    limits._last_outage_log[0] = 0.0  # the outage line is logged at most every 10 s per process
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        ticket = _acquire(principal)
        assert ticket.degraded and ticket.headers() == {}
        limits.finish(ticket=ticket, usage=None)
        with override_settings(BILLING_RATE_LIMIT_FAIL_OPEN=False), pytest.raises(LimiterUnavailable):
            _acquire(principal)
    assert any("rate limiter unavailable" in r.message for r in caplog.records)


def test_without_policies_nothing_is_limited_and_no_headers_are_sent(principal_factory):
    ticket = _acquire(principal_factory())
    assert ticket.headers() == {}
