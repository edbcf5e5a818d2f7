from __future__ import annotations

from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "claudeapp.conversations"
    label = "conversations"

    def ready(self) -> None:
        from claudeapp.calls import inflight
        from claudeapp.conversations.interrupted import answer_interrupted

        inflight.when_interrupted(answer_interrupted)
