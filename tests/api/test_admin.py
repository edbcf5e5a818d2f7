from __future__ import annotations

import re

import pytest

from claudeapp.api import keys
from claudeapp.api.errors import InvalidKey
from claudeapp.api.models import PartnerKey

pytestmark = pytest.mark.django_db

KEY_RE = re.compile(r"cgw_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}")


@pytest.fixture
def admin_client(client, user_factory):
    client.force_login(user_factory(is_staff=True, is_superuser=True))
    return client


def test_adding_a_key_in_the_admin_shows_the_raw_key_exactly_once(admin_client, user_factory):
    owner = user_factory(username="partner")
    response = admin_client.post(
        "/admin/api/partnerkey/add/",
        {"name": "ACME", "owner": owner.pk, "scopes": ["messages", "models"], "expires_at_0": "", "expires_at_1": ""},
        follow=True,
    )
    assert response.status_code == 200
    shown = KEY_RE.findall(response.content.decode())
    assert len(set(shown)) == 1
    key = keys.verify(shown[0])
    assert key.name == "ACME" and key.scopes == ["messages", "models"] and key.owner_id == owner.pk
    again = admin_client.get(f"/admin/api/partnerkey/{key.pk}/change/").content.decode()
    listing = admin_client.get("/admin/api/partnerkey/").content.decode()
    for page in (again, listing):
        assert shown[0] not in page and PartnerKey.objects.get().secret_hash not in page
    assert key.masked in listing


def test_the_revoke_action_stops_the_key_at_once(admin_client, partner_key_factory, client):
    key = partner_key_factory()
    keys.verify(key.raw)  # warm
    response = admin_client.post(
        "/admin/api/partnerkey/", {"action": "revoke", "_selected_action": [key.pk]}, follow=True
    )
    assert response.status_code == 200
    assert PartnerKey.objects.get(pk=key.pk).revoked_at is not None
    with pytest.raises(InvalidKey):
        keys.verify(key.raw)


def test_the_rotate_action_shows_the_new_key_once_and_the_old_works_for_its_grace(admin_client, partner_key_factory):
    key = partner_key_factory(scopes=["jobs"])
    response = admin_client.post(
        "/admin/api/partnerkey/", {"action": "rotate", "_selected_action": [key.pk]}, follow=True
    )
    page = response.content.decode()
    shown = set(KEY_RE.findall(page))
    assert len(shown) == 1 and key.raw not in shown
    assert keys.verify(shown.pop()).pk == key.pk  # the same key: budgets, limits and jobs stay with it
    assert keys.verify(key.raw).pk == key.pk
    assert keys.webhook_secret(key=key).secret in page  # shown with the key


def test_the_operator_sets_a_keys_rotation_grace_in_the_admin(admin_client, partner_key_factory):
    key = partner_key_factory(scopes=["models"])
    response = admin_client.post(
        f"/admin/api/partnerkey/{key.pk}/change/",
        {"name": key.name, "scopes": ["models"], "expires_at_0": "", "expires_at_1": "", "rotation_grace_seconds": "0"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    admin_client.post("/admin/api/partnerkey/", {"action": "rotate", "_selected_action": [key.pk]})
    with pytest.raises(InvalidKey):
        keys.verify(key.raw)  # no grace: the old key stops at once


def test_the_revoke_action_says_how_many_queued_jobs_it_canceled(admin_client, partner_key_factory, queued_job):
    key = partner_key_factory(scopes=["jobs"])
    job = queued_job(key)
    response = admin_client.post(
        "/admin/api/partnerkey/", {"action": "revoke", "_selected_action": [key.pk]}, follow=True
    )
    assert "Revoked 1 key(s); canceled 1 job(s)" in response.content.decode()
    job.refresh_from_db()
    assert job.status == "canceled" and job.last_error_type == "key_revoked"


def test_editing_scopes_in_the_admin_applies_at_once(admin_client, partner_key_factory):
    key = partner_key_factory(scopes=["messages", "models"])
    keys.verify(key.raw)  # warm
    response = admin_client.post(
        f"/admin/api/partnerkey/{key.pk}/change/",
        {"name": key.name, "scopes": ["models"], "expires_at_0": "", "expires_at_1": ""},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert keys.verify(key.raw).scopes == ["models"]
