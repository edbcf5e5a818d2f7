from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.utils import timezone

from claudeapp.api import keys
from claudeapp.api.errors import InvalidKey, UnknownScope
from claudeapp.api.models import PartnerKey

pytestmark = pytest.mark.django_db


def test_a_key_reads_cgw_prefix_secret_and_a_crc32_checksum(partner_key_factory):
    key = partner_key_factory()
    assert re.fullmatch(r"cgw_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}", key.raw)
    assert key.raw.startswith(f"cgw_{key.prefix}_")
    body, check = key.raw[:-6], key.raw[-6:]
    assert keys.checksum(body) == check
    assert key.last4 == key.raw[-4:]


def test_the_checksum_lets_a_scanner_tell_a_key_from_a_typo_offline():
    _, raw = keys.generate()
    assert keys.parse(raw)
    flipped = raw[:20] + ("A" if raw[20] != "A" else "B") + raw[21:]
    with pytest.raises(InvalidKey) as caught:
        keys.parse(flipped)
    assert caught.value.reason == "malformed"


def test_only_the_hash_is_stored_never_the_raw_key(partner_key_factory):
    key = partner_key_factory()
    row = PartnerKey.objects.get(pk=key.pk)
    assert row.secret_hash == keys.hash_key(key.raw) and len(row.secret_hash) == 64
    secret = key.raw.split("_")[2]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM api_partnerkey WHERE id = %s", [key.pk])
        stored = " ".join(str(value) for value in cursor.fetchone())
    assert key.raw not in stored and secret not in stored


def test_verify_returns_the_key_with_its_owner_and_scopes(partner_key_factory):
    key = partner_key_factory(scopes=["messages", "models"])
    verified = keys.verify(key.raw)
    assert verified.pk == key.pk and verified.owner_id == key.owner_id
    assert verified.owner.username == key.owner.username
    assert verified.scopes == ["messages", "models"]


@pytest.mark.parametrize(
    "raw",
    ["", "cgw_", "sk-ant-api03-xyz", "x" * 5000, "cgw_abc_def", "cgw_ÄÄÄÄÄÄÄÄÄÄÄÄ_" + "a" * 38, None, 42],
)
def test_malformed_keys_are_refused_without_a_query(raw, django_assert_num_queries):
    with django_assert_num_queries(0), pytest.raises(InvalidKey):
        keys.verify(raw)


def test_a_well_formed_key_that_was_never_issued_is_refused(db):
    _, raw = keys.generate()
    with pytest.raises(InvalidKey) as caught:
        keys.verify(raw)
    assert caught.value.reason == "unknown"


def test_a_key_with_a_known_prefix_but_wrong_secret_is_refused(partner_key_factory):
    key = partner_key_factory()
    body = f"cgw_{key.prefix}_{'0' * 32}"
    with pytest.raises(InvalidKey) as caught:
        keys.verify(body + keys.checksum(body))
    assert caught.value.reason == "unknown"


def test_a_revoked_key_is_refused_at_once_even_when_warm(partner_key_factory):
    key = partner_key_factory()
    keys.verify(key.raw)  # warm every cache
    keys.revoke_key(key=key)
    with pytest.raises(InvalidKey) as caught:
        keys.verify(key.raw)
    assert caught.value.reason == "revoked"


def test_an_expired_key_is_refused(partner_key_factory, expired_at):
    key = partner_key_factory(expires_at=expired_at)
    with pytest.raises(InvalidKey) as caught:
        keys.verify(key.raw)
    assert caught.value.reason == "expired"


def test_a_key_whose_owner_is_deactivated_stops_working(partner_key_factory, django_capture_on_commit_callbacks):
    key = partner_key_factory()
    keys.verify(key.raw)
    with django_capture_on_commit_callbacks(execute=True):
        key.owner.is_active = False
        key.owner.save()
    with pytest.raises(InvalidKey):
        keys.verify(key.raw)


def test_rotate_keeps_the_key_and_lets_the_old_secret_work_for_the_grace_period(partner_key_factory, settings):
    settings.PARTNER_KEY_ROTATION_GRACE_SECONDS = 3600
    old = partner_key_factory(scopes=["jobs"])
    new, raw = keys.rotate_key(key=old)
    assert raw != old.raw and raw.startswith(f"cgw_{old.prefix}_") and new.pk == old.pk
    assert keys.verify(raw).pk == old.pk and keys.verify(old.raw).pk == old.pk  # both, during the grace
    assert dt.timedelta(minutes=59) < new.previous_valid_until - timezone.now() <= dt.timedelta(hours=1)
    PartnerKey.objects.filter(pk=old.pk).update(previous_valid_until=timezone.now() - dt.timedelta(seconds=1))
    keys.invalidate_cached(key=old)
    with pytest.raises(InvalidKey):
        keys.verify(old.raw)  # the grace is over
    assert keys.verify(raw).scopes == ["jobs"]


def test_the_keys_own_grace_overrides_the_setting_and_zero_ends_the_old_secret_at_once(partner_key_factory):
    old = partner_key_factory()
    PartnerKey.objects.filter(pk=old.pk).update(rotation_grace_seconds=0)
    _, raw = keys.rotate_key(key=old)
    keys.verify(raw)
    with pytest.raises(InvalidKey):
        keys.verify(old.raw)


def test_a_second_rotation_drops_the_first_secret_at_once(partner_key_factory):
    first = partner_key_factory()
    _, second = keys.rotate_key(key=first)
    _, third = keys.rotate_key(key=first)
    assert keys.verify(second).pk == keys.verify(third).pk == first.pk
    with pytest.raises(InvalidKey):
        keys.verify(first.raw)


def test_a_revoked_key_cannot_be_rotated_back_to_life(partner_key_factory):
    key = partner_key_factory()
    keys.revoke_key(key=key)
    with pytest.raises(InvalidKey):
        keys.rotate_key(key=key)


def test_unknown_scopes_are_refused_at_creation(user_factory):
    with pytest.raises(UnknownScope):
        keys.create_key(owner=user_factory(), name="x", scopes=["messages", "admin"])


def test_a_warm_key_is_verified_without_any_database_query(partner_key_factory, django_assert_num_queries):
    key = partner_key_factory()
    keys.verify(key.raw)
    with django_assert_num_queries(0):
        for _ in range(5):
            keys.verify(key.raw)


def test_a_key_warm_in_redis_only_needs_no_query_either(partner_key_factory, django_assert_num_queries):
    from claudeapp.api import keycache

    key = partner_key_factory()
    keys.verify(key.raw)
    keycache._local.clear()  # another process: cold locally, warm in Redis
    with django_assert_num_queries(0):
        keys.verify(key.raw)


def test_last_used_at_is_written_at_most_once_a_minute(partner_key_factory, django_assert_num_queries):
    key = partner_key_factory()
    keys.verify(key.raw)
    first = PartnerKey.objects.get(pk=key.pk).last_used_at
    assert first is not None and timezone.now() - first < dt.timedelta(minutes=1)
    for _ in range(3):
        keys.verify(key.raw)
    assert PartnerKey.objects.get(pk=key.pk).last_used_at == first


def test_principal_for_a_key_names_the_key_and_its_owners_groups(partner_key_factory):
    from django.contrib.auth.models import Group

    key = partner_key_factory()
    group = Group.objects.create(name="partners")
    key.owner.groups.add(group)
    principal = keys.principal_for(keys.verify(key.raw))
    assert principal.kind == "partner_key" and principal.id == key.pk
    assert principal.user_id == key.owner_id and principal.group_ids == frozenset({group.pk})
    assert principal.key == f"partner_key:{key.pk}"


def test_async_verify_matches_sync_verify(partner_key_factory):
    from asgiref.sync import async_to_sync

    key = partner_key_factory()
    verified = async_to_sync(keys.averify)(key.raw)  # the DB load hops back to this thread's connection
    assert verified.pk == key.pk and verified.owner.username == key.owner.username
    assert async_to_sync(keys.averify)(key.raw).pk == key.pk  # warm


def test_async_verify_refuses_a_revoked_key(partner_key_factory):
    from asgiref.sync import async_to_sync

    key = partner_key_factory()
    async_to_sync(keys.averify)(key.raw)
    keys.revoke_key(key=key)
    with pytest.raises(InvalidKey):
        async_to_sync(keys.averify)(key.raw)


def test_a_deleted_key_stops_working_even_when_warm(partner_key_factory):
    key = partner_key_factory()
    keys.verify(key.raw)
    PartnerKey.objects.filter(pk=key.pk).delete()
    with pytest.raises(InvalidKey):
        keys.verify(key.raw)


@pytest.mark.django_db(transaction=True)
def test_async_verify_hands_its_database_connection_back_before_the_view_runs(partner_key_factory):
    from asgiref.sync import async_to_sync

    key = partner_key_factory()
    keys.revoke_key(key=partner_key_factory())  # bumps the version: the next lookup is cold everywhere
    async_to_sync(keys.averify)(key.raw)
    assert connection.connection is None  # a streaming view that follows holds no pool connection


def test_a_warm_key_is_built_without_a_query_and_a_field_the_cache_does_not_hold_is_read_from_its_row(
    partner_key_factory, django_assert_num_queries
):
    key = partner_key_factory()
    PartnerKey.objects.filter(pk=key.pk).update(rotation_grace_seconds=7, last_used_at=timezone.now())
    owner = PartnerKey.objects.get(pk=key.pk).owner
    owner.email = "partner@example.com"
    owner.save(update_fields=["email"])
    keys.verify(key.raw)  # warms the cache
    with django_assert_num_queries(0):
        warm = keys.verify(key.raw)
        assert (warm.pk, warm.prefix, warm.owner.pk, warm.owner.get_username()) == (
            key.pk, key.prefix, owner.pk, owner.get_username()
        )  # fmt: skip
        assert warm.revoked_at is None and list(warm.scopes) == list(key.scopes)
    assert warm.rotation_grace_seconds == 7 and warm.last_used_at is not None  # deferred: loaded, never a default
    assert warm.owner.email == "partner@example.com"
