from __future__ import annotations

from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Routing and model map"

    def ready(self) -> None:
        from routing import signals

        signals.connect()
