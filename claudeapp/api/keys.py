"""Partner keys: minting, revoking, rotating and verifying.

Format (GitHub/Stripe style): `cgw_<prefix>_<secret><checksum>`, base62. The prefix is the
public lookup id; the checksum is CRC32 of everything before it, so scanners can tell a
leaked key from random text offline, and malformed input is refused without touching the
database. Only HMAC-SHA256(pepper, key) is stored: the key has ~190 bits of entropy, so a
slow password hash would only cost CPU on every request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import string
import time
import zlib
from collections.abc import Callable, Iterable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from claudeapp.accounts.principals import Principal
from claudeapp.api import keycache
from claudeapp.api.errors import InvalidKey, UnknownScope
from claudeapp.api.models import PartnerKey, Scope
from claudeapp.core import rows
from claudeapp.jobs import services as job_services
from claudeapp.jobs import webhooks

KEY_TYPE = "cgw"
PRINCIPAL_KIND = "partner_key"
ALPHABET = string.digits + string.ascii_letters
PREFIX_LENGTH, SECRET_LENGTH, CHECKSUM_LENGTH = 12, 32, 6
KEY_LENGTH = len(KEY_TYPE) + 1 + PREFIX_LENGTH + 1 + SECRET_LENGTH + CHECKSUM_LENGTH
_KEY_RE = re.compile(rf"{KEY_TYPE}_([0-9A-Za-z]{{{PREFIX_LENGTH}}})_[0-9A-Za-z]{{{SECRET_LENGTH + CHECKSUM_LENGTH}}}\Z")


# --- format -----------------------------------------------------------------------------


def _random(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def checksum(body: str) -> str:
    """CRC32 of `body` as 6 base62 characters (62**6 > 2**32)."""
    value, digits = zlib.crc32(body.encode("ascii")), []
    for _ in range(CHECKSUM_LENGTH):
        value, digit = divmod(value, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def generate() -> tuple[str, str]:
    """A fresh (prefix, raw key)."""
    prefix = _random(PREFIX_LENGTH)
    body = f"{KEY_TYPE}_{prefix}_{_random(SECRET_LENGTH)}"
    return prefix, body + checksum(body)


def parse(raw: object) -> str:
    """The prefix of a well-formed key with a correct checksum; InvalidKey('malformed') otherwise."""
    if not isinstance(raw, str) or len(raw) != KEY_LENGTH:
        raise InvalidKey("malformed")
    match = _KEY_RE.match(raw)
    if match is None or not hmac.compare_digest(checksum(raw[:-CHECKSUM_LENGTH]), raw[-CHECKSUM_LENGTH:]):
        raise InvalidKey("malformed")
    return match.group(1)


def hash_key(raw: str) -> str:
    return hmac.new(settings.PARTNER_KEY_PEPPER.encode(), raw.encode(), hashlib.sha256).hexdigest()


# --- services -----------------------------------------------------------------------------


def clean_scopes(scopes: Iterable[str]) -> list[str]:
    cleaned = []
    for scope in scopes:
        if scope not in Scope.values:
            raise UnknownScope(scope)
        if scope not in cleaned:
            cleaned.append(scope)
    return cleaned


def create_key(
    *,
    owner: Any,
    name: str,
    scopes: Iterable[str],
    expires_at: dt.datetime | None = None,
    rotation_grace_seconds: int | None = None,
) -> tuple[PartnerKey, str]:
    """A new key and its raw value. The raw value exists only in the return value: show it once.
    The key's webhook signing secret is issued with it (webhook_secret(key=...) reads it back)."""
    prefix, raw = generate()
    key = PartnerKey.objects.create(
        name=name,
        owner=owner,
        scopes=clean_scopes(scopes),
        prefix=prefix,
        secret_hash=hash_key(raw),
        last4=raw[-4:],
        expires_at=expires_at,
        rotation_grace_seconds=rotation_grace_seconds,
    )
    webhooks.issue_secret(principal_kind=PRINCIPAL_KIND, principal_id=key.pk)
    return key, raw


def revoke_key(*, key: PartnerKey) -> int:
    """Revoke now; every process refuses the key from its next request on. Its jobs that have not
    started (queued, or waiting in a Message Batch) are canceled, so nothing it queued runs and is
    billed later. Returns how many jobs were canceled."""
    now = timezone.now()
    with transaction.atomic():
        PartnerKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now)
        key.refresh_from_db(fields=["revoked_at"])
        invalidate_cached(key=key)
        return job_services.cancel_pending_for(principal_kind=PRINCIPAL_KIND, principal_id=key.pk)


def invalidate_cached(*, key: PartnerKey) -> None:
    """After any change to a key row: every process re-reads it on its next request."""
    # Now (this process, and tests inside one transaction) and again after commit, so a
    # reader that cached the old row between the two bumps cannot keep it.
    keycache.invalidate(key.prefix)
    transaction.on_commit(lambda: keycache.invalidate(key.prefix))


def rotation_grace(key: PartnerKey) -> dt.timedelta:
    """How long the old secret keeps working: the key's own setting, else PARTNER_KEY_ROTATION_GRACE_SECONDS."""
    seconds = key.rotation_grace_seconds
    return dt.timedelta(seconds=settings.PARTNER_KEY_ROTATION_GRACE_SECONDS if seconds is None else seconds)


@transaction.atomic
def rotate_key(*, key: PartnerKey) -> tuple[PartnerKey, str]:
    """A new secret for the same key (same row, prefix, scopes, budgets, limits, conversations and jobs);
    the old secret keeps working for the grace period (`rotation_grace`), then only the new one does.
    Rotating again before the grace ends drops the older secret at once."""
    locked = PartnerKey.objects.select_for_update().get(pk=key.pk)
    if locked.revoked_at is not None:
        raise InvalidKey("revoked")
    now = timezone.now()
    grace = rotation_grace(locked)
    body = f"{KEY_TYPE}_{locked.prefix}_{_random(SECRET_LENGTH)}"
    raw = body + checksum(body)
    locked.previous_secret_hash = locked.secret_hash if grace else ""
    locked.previous_valid_until = now + grace if grace else None
    locked.secret_hash, locked.last4, locked.rotated_at = hash_key(raw), raw[-4:], now
    locked.save(update_fields=["previous_secret_hash", "previous_valid_until", "secret_hash", "last4", "rotated_at"])
    invalidate_cached(key=locked)
    return locked, raw


def webhook_secret(*, key: PartnerKey) -> webhooks.SecretInfo:
    return webhooks.secret_info(principal_kind=PRINCIPAL_KIND, principal_id=key.pk)


def rotate_webhook_secret(*, key: PartnerKey) -> webhooks.SecretInfo:
    return webhooks.rotate_secret(principal_kind=PRINCIPAL_KIND, principal_id=key.pk)


# --- verification -------------------------------------------------------------------------


def _timestamp(value: dt.datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def load_snapshot(prefix: str) -> keycache.Snapshot | None:
    """What the caches hold about a key: everything a request needs, without the database."""
    key = PartnerKey.objects.select_related("owner").filter(prefix=prefix).first()
    if key is None:
        return None
    return {
        "id": key.pk,
        "name": key.name,
        "prefix": key.prefix,
        "secret_hash": key.secret_hash,
        "last4": key.last4,
        "scopes": list(key.scopes),
        "created_at": _timestamp(key.created_at),
        "expires_at": _timestamp(key.expires_at),
        "revoked_at": _timestamp(key.revoked_at),
        "previous_secret_hash": key.previous_secret_hash,
        "previous_valid_until": _timestamp(key.previous_valid_until),
        "owner_id": key.owner_id,
        "owner_username": key.owner.get_username(),
        "owner_active": key.owner.is_active,
        "group_ids": list(key.owner.groups.values_list("pk", flat=True)),
    }


def _matches(snapshot: keycache.Snapshot, digest: str) -> bool:
    if hmac.compare_digest(snapshot["secret_hash"], digest):
        return True
    # The secret before the last rotation, during its grace period (snapshots cached before this field
    # existed have neither key: they simply do not match).
    previous, until = snapshot.get("previous_secret_hash") or "", snapshot.get("previous_valid_until")
    return bool(previous) and until is not None and until > time.time() and hmac.compare_digest(previous, digest)


def _accept(snapshot: keycache.Snapshot | None, digest: str) -> PartnerKey:
    if snapshot is None or not _matches(snapshot, digest):
        raise InvalidKey("unknown")
    if snapshot["revoked_at"] is not None:
        raise InvalidKey("revoked")
    if snapshot["expires_at"] is not None and snapshot["expires_at"] <= timezone.now().timestamp():
        raise InvalidKey("expired")
    if not snapshot["owner_active"]:
        raise InvalidKey("inactive")
    return _instance(snapshot)


def _datetime(value: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value, tz=dt.UTC) if value is not None else None


def _instance(snapshot: keycache.Snapshot) -> PartnerKey:
    # Built from the cache, not the database: the key and a light owner (pk, username, is_active); any
    # other field is deferred (reading it loads it).
    user_model = get_user_model()
    owner = rows.loaded(
        user_model,
        **{user_model._meta.pk.attname: snapshot["owner_id"], user_model.USERNAME_FIELD: snapshot["owner_username"]},
        is_active=True,
    )
    key = rows.loaded(
        PartnerKey,
        id=snapshot["id"],
        name=snapshot["name"],
        owner_id=snapshot["owner_id"],
        scopes=list(snapshot["scopes"]),
        prefix=snapshot["prefix"],
        secret_hash=snapshot["secret_hash"],
        last4=snapshot["last4"],
        created_at=_datetime(snapshot["created_at"]),
        expires_at=_datetime(snapshot["expires_at"]),
        revoked_at=None,  # _accept refused a revoked one
        previous_secret_hash=snapshot.get("previous_secret_hash") or "",
        previous_valid_until=_datetime(snapshot.get("previous_valid_until")),
    )
    key.owner = owner
    key.group_ids = frozenset(snapshot["group_ids"])  # type: ignore[attr-defined]
    return key


def _write_last_used(key_id: int) -> None:
    PartnerKey.objects.filter(pk=key_id).update(last_used_at=timezone.now())


def verify(raw: str) -> PartnerKey:
    """The live key `raw` names, or InvalidKey. Warm keys cost one Redis read and no query."""
    prefix = parse(raw)
    key = _accept(keycache.lookup(prefix, load_snapshot), hash_key(raw))
    if keycache.claim_touch(prefix):
        _write_last_used(key.pk)
    return key


def _released(function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Run `function`, then hand the thread's connection back to the pool, so an async view that
    goes on to stream for minutes does not hold a database connection the whole time."""

    def run(argument: Any) -> Any:
        try:
            return function(argument)
        finally:
            if not connection.in_atomic_block:  # inside a transaction (tests) the caller owns it
                connection.close()

    return run


async def _aload_snapshot(prefix: str) -> keycache.Snapshot | None:
    """`load_snapshot` from async code, its thread wrapper built only on a miss (not on every call)."""
    return await sync_to_async(_released(load_snapshot))(prefix)


async def averify(raw: str) -> PartnerKey:
    """`verify` for async views: the database is reached (in a thread) only on a cache miss."""
    prefix = parse(raw)
    key = _accept(await keycache.alookup(prefix, _aload_snapshot), hash_key(raw))
    if await keycache.aclaim_touch(prefix):
        await sync_to_async(_released(_write_last_used))(key.pk)
    return key


def principal_for(key: PartnerKey) -> Principal:
    group_ids = getattr(key, "group_ids", None)
    if group_ids is None:
        group_ids = frozenset(key.owner.groups.values_list("pk", flat=True))
    return Principal(kind="partner_key", id=key.pk, user_id=key.owner_id, group_ids=frozenset(group_ids))
