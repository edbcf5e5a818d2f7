"""The request log's settings and its retention."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from claudeapp.requestlog.models import RequestLog, RequestLogSettings


def get_settings() -> RequestLogSettings:
    """The one settings row, created with the defaults on first read."""
    row = RequestLogSettings.objects.order_by("pk").first()
    return row or RequestLogSettings.objects.create()


def purge_expired(*, now: dt.datetime | None = None, chunk: int = 10_000) -> int:
    """Delete rows older than the retention, in chunks (a short lock each). Returns how many."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=get_settings().retention_days)
    deleted = 0
    while True:
        ids = list(RequestLog.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:chunk])
        if not ids:
            return deleted
        deleted += RequestLog.objects.filter(pk__in=ids).delete()[0]
