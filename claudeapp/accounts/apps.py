from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "claudeapp.accounts"
    label = "accounts"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from claudeapp.accounts import lockout

        user_logged_in.connect(lockout.on_logged_in, dispatch_uid="accounts.lockout.release")
