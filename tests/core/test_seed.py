from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from claudeapp.accounts.models import User


@pytest.mark.django_db
def test_seed_creates_admin_and_demo_users_and_is_idempotent():
    call_command("seed", stdout=StringIO())
    call_command("seed", stdout=StringIO())
    admin = User.objects.get(username="admin")
    demo = User.objects.get(username="demo")
    assert admin.is_superuser and admin.is_staff
    assert not demo.is_staff
    assert demo.check_password("demo")
    assert User.objects.count() == 2


@pytest.mark.django_db
def test_seed_does_not_reset_a_changed_password():
    call_command("seed", stdout=StringIO())
    admin = User.objects.get(username="admin")
    admin.set_password("a-new-strong-password")
    admin.save()
    call_command("seed", stdout=StringIO())
    admin.refresh_from_db()
    assert admin.check_password("a-new-strong-password")
