"""Publishing the jobs package's Celery tasks, by name.

The tasks module imports the runner, the sweeper and the webhooks to run them; sending by name
(`send_task`) lets those modules publish without importing it back. The names are the tasks'
import paths, which Celery registers them under (tests/jobs/test_transitions.py checks they exist).
"""

from __future__ import annotations

import logging
from uuid import UUID

from celery import current_app

logger = logging.getLogger(__name__)

RUN_JOB = "claudeapp.jobs.tasks.run_job"
DELIVER_WEBHOOK = "claudeapp.jobs.tasks.deliver_webhook"


def enqueue(*, job_id: UUID | str, queue: str, countdown: float | None = None) -> None:
    """Publish a job id. A lost publish is not fatal: the sweeper re-enqueues stale queued jobs."""
    try:
        current_app.send_task(RUN_JOB, args=[str(job_id)], queue=queue, countdown=countdown)
    except Exception:
        logger.warning("job %s: publish failed; the sweeper will re-enqueue it", job_id, exc_info=True)


def webhook(*, job_id: UUID | str, attempt: int = 1, countdown: float | None = None) -> None:
    """Publish one webhook delivery attempt of a job that reached a terminal state."""
    try:
        current_app.send_task(DELIVER_WEBHOOK, args=[str(job_id), attempt], countdown=countdown)
    except Exception:
        logger.warning("job %s: webhook publish (attempt %s) failed", job_id, attempt, exc_info=True)
