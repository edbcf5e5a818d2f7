from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from claudeapp.api import keys
from claudeapp.api.models import PartnerKey

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def second_process(django_db_setup):
    """Another OS process with its own per-process key cache, set to hold keys for five minutes."""
    db = settings.DATABASES["default"]
    env = dict(
        os.environ,
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        PARTNER_KEY_CACHE_SECONDS="300",
        DB_POOL="0",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.api.verify_worker"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"

    def ask(raw: str) -> str:
        proc.stdin.write(raw + "\n")
        proc.stdin.flush()
        return proc.stdout.readline().strip()

    yield ask
    proc.stdin.close()
    proc.wait(timeout=10)


@pytest.mark.django_db(transaction=True)
def test_revoking_a_key_stops_it_in_another_process_without_waiting_for_its_cache(partner_key_factory, second_process):
    key = partner_key_factory()
    assert second_process(key.raw) == "ok"
    assert second_process(key.raw) == "ok"  # now warm in that process for five minutes
    keys.revoke_key(key=key)
    assert second_process(key.raw) == "denied:revoked"


@pytest.mark.django_db(transaction=True)
def test_rotating_a_key_switches_every_process_over_at_once(partner_key_factory, second_process):
    key = partner_key_factory()
    PartnerKey.objects.filter(pk=key.pk).update(rotation_grace_seconds=0)  # no grace: the old one stops now
    assert second_process(key.raw) == "ok"
    _, raw = keys.rotate_key(key=key)
    assert second_process(key.raw) == "denied:unknown"
    assert second_process(raw) == "ok"


@pytest.mark.django_db(transaction=True)
def test_during_the_grace_every_process_takes_both_the_old_and_the_new_key(partner_key_factory, second_process):
    key = partner_key_factory()
    assert second_process(key.raw) == "ok"  # warm there with the old secret only
    _, raw = keys.rotate_key(key=key)
    assert second_process(raw) == "ok" and second_process(key.raw) == "ok"
