from __future__ import annotations

from django.apps import AppConfig


class PortalConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "claudeapp.portal"
    verbose_name = "Partner portal"
