"""Seed step: the demo and admin logins for a development machine."""

from __future__ import annotations

from typing import TextIO

from django.conf import settings

from claudeapp.accounts.models import User


def run(*, stdout: TextIO) -> None:
    if not settings.SEED_DEMO_USERS:
        stdout.write("accounts: demo users skipped (SEED_DEMO_USERS=0)\n")
        return
    _ensure_user("admin", settings.DEMO_ADMIN_PASSWORD, is_staff=True, is_superuser=True)
    _ensure_user("demo", settings.DEMO_USER_PASSWORD, is_staff=False, is_superuser=False)
    stdout.write("accounts: users admin and demo ready\n")


def _ensure_user(username: str, password: str, *, is_staff: bool, is_superuser: bool) -> None:
    user, created = User.objects.get_or_create(
        username=username,
        defaults={"is_staff": is_staff, "is_superuser": is_superuser, "email": f"{username}@example.com"},
    )
    if created:
        user.set_password(password)
        user.save(update_fields=["password"])
