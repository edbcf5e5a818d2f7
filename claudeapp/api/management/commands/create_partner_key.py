from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from claudeapp.api import keys
from claudeapp.api.errors import UnknownScope
from claudeapp.api.models import Scope


class Command(BaseCommand):
    help = "Create a partner API key. The key is printed once, alone on the last line; only its hash is stored."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--user", required=True, help="Username of the key's owner.")
        parser.add_argument("--scopes", default=",".join(Scope.values), help="Comma list (default: all scopes).")
        parser.add_argument("--expires-days", type=int, default=None, help="Days until the key expires.")

    def handle(self, *args: Any, name: str, user: str, scopes: str, expires_days: int | None, **options: Any) -> None:
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"no user named {user!r}")
        if expires_days is not None and expires_days <= 0:
            raise CommandError("--expires-days must be positive")
        expires_at = timezone.now() + dt.timedelta(days=expires_days) if expires_days else None
        wanted = [scope.strip() for scope in scopes.split(",") if scope.strip()]
        try:
            key, raw = keys.create_key(owner=owner, name=name, scopes=wanted, expires_at=expires_at)
        except UnknownScope as exc:
            raise CommandError(f"{exc}; known scopes: {', '.join(Scope.values)}") from exc
        self.stderr.write(f"Created {key.masked} for {user} with scopes {', '.join(key.scopes) or '(none)'}.")
        self.stderr.write("Store the key now; it cannot be shown again.")
        # Not secret from its owner like the key (it can be read back through the API), but still a secret.
        self.stderr.write(f"Webhook signing secret: {keys.webhook_secret(key=key).secret}")
        self.stdout.write(raw)
