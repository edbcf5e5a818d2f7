"""Sign-in throttling for every password form (/accounts/login/, /admin/login/): after
LOGIN_LOCKOUT_USER_FAILURES failed attempts on one username, or LOGIN_LOCKOUT_IP_FAILURES from one
client address (an IPv6 client's /64), within LOGIN_LOCKOUT_WINDOW_SECONDS, every further attempt is
refused for LOGIN_LOCKOUT_COOLOFF_SECONDS, the right password included.

Counters live in Redis, shared by every web process. An attempt takes its slot *before* the password
is checked, in one script that refuses or counts atomically, so parallel guesses cannot slip past the
limit between a check and a count; a successful sign-in gives the slot back (and clears the username's
count). Redis down: sign-ins go on unthrottled and it is logged, as rate limits fail open.

Wired as the first authentication backend (it sees the request and the username before ModelBackend,
and refuses with PermissionDenied, which stops authenticate()), the user_logged_in signal (release),
and LockoutMiddleware, which turns the refused attempt into a 429 page with Retry-After.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from claudeapp.core import redisconn

log = logging.getLogger(__name__)

# KEYS: username counter, address counter. ARGV: their limits, window ms, cool-off ms.
# Returns 0 when the attempt is counted, else the milliseconds until the blocking counter expires.
_ACQUIRE = """
for i = 1, 2 do
  local n = tonumber(redis.call('GET', KEYS[i]) or '0')
  if n >= tonumber(ARGV[i]) then return math.max(redis.call('PTTL', KEYS[i]), 1) end
end
for i = 1, 2 do
  local n = redis.call('INCR', KEYS[i])
  if n == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
  if n >= tonumber(ARGV[i]) then redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
end
return 0
"""
# The attempt signed in: forget the username's failures, give the address its slot back.
_RELEASE = """
redis.call('DEL', KEYS[1])
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
return 0
"""
_scripts: dict[tuple[int, str], Any] = {}
ATTEMPT_ATTR = "_login_attempt_keys"
LOCKED_ATTR = "login_locked_out_seconds"


@dataclass(frozen=True)
class Attempt:
    user_key: str
    address_key: str


def client_address(request: HttpRequest) -> str:
    """REMOTE_ADDR (uvicorn sets it from X-Forwarded-For only for --forwarded-allow-ips), IPv6 by its /64."""
    raw = request.META.get("REMOTE_ADDR") or "unknown"
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.encode()).hexdigest()[:32]  # fixed length, and no username in Redis
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:accounts:lockout:{kind}:{digest}"


def attempt_for(*, username: str, address: str) -> Attempt:
    return Attempt(user_key=_key("user", username.casefold()), address_key=_key("addr", address))


def _script(name: str, source: str) -> Any:
    client = redisconn.client()
    found = _scripts.get((id(client), name))
    if found is None:
        found = _scripts[(id(client), name)] = client.register_script(source)
    return found


def acquire(attempt: Attempt) -> float:
    """Count one attempt: 0 when it may go ahead, else the seconds until it may."""
    args = [
        settings.LOGIN_LOCKOUT_USER_FAILURES,
        settings.LOGIN_LOCKOUT_IP_FAILURES,
        int(settings.LOGIN_LOCKOUT_WINDOW_SECONDS * 1000),
        int(settings.LOGIN_LOCKOUT_COOLOFF_SECONDS * 1000),
    ]
    try:
        wait_ms = int(_script("acquire", _ACQUIRE)(keys=[attempt.user_key, attempt.address_key], args=args))
    except redisconn.UNAVAILABLE as exc:
        log.warning("accounts: sign-in throttling is off, Redis is unreachable (%s)", exc)
        return 0.0
    return wait_ms / 1000


def release(attempt: Attempt) -> None:
    try:
        _script("release", _RELEASE)(keys=[attempt.user_key, attempt.address_key], args=[])
    except redisconn.UNAVAILABLE as exc:
        log.warning("accounts: could not clear sign-in failures (%s)", exc)


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


class LockoutBackend:
    """First in AUTHENTICATION_BACKENDS: counts the attempt, or refuses it while locked out.

    Deliberately no get_user(): it never signs anyone in, so sessions and force_login() keep naming
    ModelBackend."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None, **credentials: Any) -> None:
        if request is None or username is None:
            return None  # not a sign-in form (e.g. a test client's login()): nothing to throttle
        attempt = attempt_for(username=username, address=client_address(request))
        wait = acquire(attempt)
        if wait:
            setattr(request, LOCKED_ATTR, wait)
            raise PermissionDenied("too many failed sign-ins")  # authenticate() stops: no backend checks it
        setattr(request, ATTEMPT_ATTR, attempt)
        return None  # counted: the next backend checks the password


def on_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    attempt = getattr(request, ATTEMPT_ATTR, None)
    if attempt is not None:
        release(attempt)
