from __future__ import annotations

from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "claudeapp.conversations"
    label = "conversations"

    def ready(self) -> None:
        from claudeapp.conversations import receivers  # noqa: F401  (connects the job -> message receiver)
