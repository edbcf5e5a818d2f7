from __future__ import annotations

from django.apps import AppConfig


class RequestLogConfig(AppConfig):
    name = "claudeapp.requestlog"
    label = "requestlog"
    verbose_name = "Request log"

    def ready(self) -> None:
        # Every billed call's ending (refusals included) is handed to the in-process buffer.
        from claudeapp.requestlog import buffer

        buffer.connect()
