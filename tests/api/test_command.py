from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from claudeapp.api import keys
from claudeapp.api.models import PartnerKey

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_partner_key", *args, stdout=out, stderr=err)
    return out.getvalue()


def test_create_partner_key_prints_the_key_alone_on_its_last_line_and_it_authenticates(user_factory, client):
    owner = user_factory(username="acme")
    raw = run("ACME prod", "--user", "acme", "--scopes", "messages,models", "--expires-days", "30").splitlines()[-1]
    key = keys.verify(raw)
    assert key.name == "ACME prod" and key.owner_id == owner.pk and key.scopes == ["messages", "models"]
    assert key.expires_at is not None
    assert client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200


def test_create_partner_key_defaults_to_every_scope_and_no_expiry(user_factory):
    user_factory(username="acme")
    key = keys.verify(run("all", "--user", "acme").splitlines()[-1])
    assert set(key.scopes) == {"messages", "conversations", "jobs", "usage", "models"} and key.expires_at is None


@pytest.mark.parametrize(
    "args",
    [
        ["x", "--user", "nobody"],
        ["x", "--user", "acme", "--scopes", "messages,admin"],
        ["x", "--user", "acme", "--expires-days", "0"],
    ],
)
def test_create_partner_key_refuses_bad_input_without_creating_anything(user_factory, args):
    user_factory(username="acme")
    with pytest.raises(CommandError):
        run(*args)
    assert not PartnerKey.objects.exists()


def test_create_partner_key_shows_the_keys_webhook_signing_secret_on_stderr(user_factory):
    user_factory(username="acme")
    out, err = io.StringIO(), io.StringIO()
    call_command("create_partner_key", "hooks", "--user", "acme", stdout=out, stderr=err)
    key = keys.verify(out.getvalue().splitlines()[-1])
    assert f"Webhook signing secret: {keys.webhook_secret(key=key).secret}" in err.getvalue()
    assert "whsec_" not in out.getvalue()  # stdout stays the key alone
