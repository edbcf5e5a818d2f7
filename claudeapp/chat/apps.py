from __future__ import annotations

from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "claudeapp.chat"
    label = "chat"
