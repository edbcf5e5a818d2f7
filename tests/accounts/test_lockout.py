"""Sign-in throttling on both password forms, against the real Redis (the test's own database)."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.test import Client

from billing import redisconn
from claudeapp.accounts import lockout

pytestmark = pytest.mark.django_db

LOGIN_URLS = ["/accounts/login/", "/admin/login/"]
PASSWORD = "right-password-123"


@pytest.fixture(autouse=True)
def _fast_hashes_and_small_limits(settings):
    # The hasher is not what is tested; PBKDF2's cost would make each wrong guess take a second.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LOGIN_LOCKOUT_USER_FAILURES = 5
    settings.LOGIN_LOCKOUT_IP_FAILURES = 20


@pytest.fixture
def staff(user_factory):
    # A fresh name each test: Redis counters outlive the test's database transaction.
    return user_factory(username=f"op-{uuid.uuid4().hex[:10]}", password=PASSWORD, is_staff=True)


def _address() -> str:
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


def _sign_in(client: Client, url: str, username: str, password: str, address: str):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("url", LOGIN_URLS)
def test_thirty_wrong_passwords_lock_the_account_out_the_right_password_included(url, staff):
    client, address = Client(), _address()
    statuses = [_sign_in(client, url, staff.username, f"wrong-{n}", address).status_code for n in range(30)]
    assert statuses == [200] * 5 + [429] * 25  # the form's error 5 times, then the lockout

    refused = _sign_in(client, url, staff.username, PASSWORD, address)
    assert refused.status_code == 429 and not _signed_in(client)
    assert 0 < int(refused["Retry-After"]) <= 15 * 60
    assert b"Too many sign-in attempts" in refused.content and b"Try again in 15 minutes" in refused.content

    other_address = _sign_in(Client(), url, staff.username, PASSWORD, _address())
    assert other_address.status_code == 429  # the username is locked, wherever the guesses come from


@pytest.mark.parametrize("url", LOGIN_URLS)
def test_a_few_typos_then_the_right_password_signs_in_and_clears_the_count(url, staff):
    client, address = Client(), _address()
    for n in range(4):
        assert _sign_in(client, url, staff.username, f"typo-{n}", address).status_code == 200
    assert _sign_in(client, url, staff.username, PASSWORD, address).status_code == 302
    assert _signed_in(client)

    again = Client()
    for n in range(4):  # a fresh allowance: the success cleared the username's failures
        assert _sign_in(again, url, staff.username, f"typo-again-{n}", address).status_code == 200
    assert _sign_in(again, url, staff.username, PASSWORD, address).status_code == 302


@pytest.mark.parametrize("url", LOGIN_URLS)
def test_one_address_guessing_many_usernames_is_locked_out_for_everyone_it_tries(url, staff, settings):
    settings.LOGIN_LOCKOUT_IP_FAILURES = 6
    address = _address()
    for n in range(6):  # one guess each on six names: no username reaches its own limit
        assert _sign_in(Client(), url, f"nobody-{uuid.uuid4().hex}-{n}", "guess", address).status_code == 200

    client = Client()
    assert _sign_in(client, url, staff.username, PASSWORD, address).status_code == 429
    assert not _signed_in(client)
    assert _sign_in(client, url, staff.username, PASSWORD, _address()).status_code == 302  # elsewhere: fine


def test_an_ipv6_client_is_counted_by_its_64():
    request = type("R", (), {"META": {"REMOTE_ADDR": "2001:db8:1:2:aaaa::1"}})()
    other = type("R", (), {"META": {"REMOTE_ADDR": "2001:db8:1:2:bbbb::9"}})()
    assert lockout.client_address(request) == lockout.client_address(other) == "2001:db8:1:2::/64"


def test_parallel_guesses_never_get_more_than_the_limit_through(settings):
    attempt = lockout.attempt_for(username=f"racer-{uuid.uuid4().hex}", address=_address())
    results: list[float] = []
    barrier = threading.Barrier(24)

    def guess() -> None:
        barrier.wait()
        results.append(lockout.acquire(attempt))

    threads = [threading.Thread(target=guess) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(0.0) == settings.LOGIN_LOCKOUT_USER_FAILURES
    assert redisconn.client().get(attempt.user_key) == b"5"


def test_the_lockout_ends_after_the_cool_off(settings):
    settings.LOGIN_LOCKOUT_USER_FAILURES = 1
    settings.LOGIN_LOCKOUT_COOLOFF_SECONDS = 1
    attempt = lockout.attempt_for(username=f"patient-{uuid.uuid4().hex}", address=_address())
    assert lockout.acquire(attempt) == 0.0
    assert 0 < lockout.acquire(attempt) <= 1.0
    redis = redisconn.client()
    assert 0 < redis.pttl(attempt.user_key) <= 1000  # Redis ends it; nothing here waits for the clock


@pytest.mark.parametrize("url", LOGIN_URLS)
def test_with_redis_unreachable_sign_ins_go_on_unthrottled(url, staff, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # port 1 refuses connections: a real unreachable Redis
    client, address = Client(), _address()
    for n in range(7):
        assert _sign_in(client, url, staff.username, f"wrong-{n}", address).status_code == 200
    assert _sign_in(client, url, staff.username, PASSWORD, address).status_code == 302
