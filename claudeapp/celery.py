"""The Celery app. Reliability settings live in settings.py (CELERY_*)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "claudeapp.settings")

app = Celery("claudeapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
