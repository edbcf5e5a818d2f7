from __future__ import annotations

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "claudeapp.api"
    label = "api"

    def ready(self) -> None:
        from claudeapp.api import anthropic_batch_views, call_errors, errors, jobs_api, schema, signals  # noqa: F401  (registers the OpenAPI extension and receivers)
        from claudeapp.api.anthropic_version import VersionRefused

        # The error registry, built once, before the first request: the defaults first, then each
        # module's own (a later registration wins).
        errors.register_defaults()
        call_errors.register()
        jobs_api.register_errors()
        anthropic_batch_views.register_errors()
        errors.register_error(VersionRefused, 400, "invalid_request_error")
