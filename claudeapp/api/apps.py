from __future__ import annotations

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "claudeapp.api"
    label = "api"

    def ready(self) -> None:
        from claudeapp.api import errors, schema, signals  # noqa: F401  (registers the OpenAPI extension and receivers)

        errors.register_optional()  # map billing's and the gateway's errors, if present, before the first request
