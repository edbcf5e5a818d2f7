"""Beat task: a thin wrapper over the attachments service."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.conf import settings


@shared_task(ignore_result=True)
def purge_unsent() -> int:
    from claudeapp.attachments import services

    return services.purge_unsent(older_than=dt.timedelta(seconds=settings.ATTACHMENT_UNSENT_MAX_AGE_SECONDS))
