"""Beat task: the request log's retention."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def purge_request_log() -> int:
    from claudeapp.requestlog import services

    return services.purge_expired()
