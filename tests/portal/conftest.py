from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def partner_key_factory(user_factory):
    """make(owner=..., name=..., scopes=...) -> PartnerKey with the raw key on `.raw`."""
    from claudeapp.api import keys
    from claudeapp.api.models import Scope

    def make(*, owner=None, name="partner", scopes=tuple(Scope.values)):
        key, raw = keys.create_key(owner=owner or user_factory(), name=name, scopes=scopes)
        key.raw = raw
        return key

    return make
