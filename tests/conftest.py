from __future__ import annotations

import pytest

pytest_plugins = ["tests.fixtures.emulator"]


@pytest.fixture
def user_factory(db):
    from claudeapp.accounts.models import User

    counter = iter(range(1, 1_000_000))

    def make(**fields):
        n = next(counter)
        fields.setdefault("username", f"user{n}")
        password = fields.pop("password", "pw-for-tests-123")
        user = User.objects.create(**fields)
        user.set_password(password)
        user.save(update_fields=["password"])
        return user

    return make
