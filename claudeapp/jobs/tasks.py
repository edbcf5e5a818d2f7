"""Celery tasks: thin, take ids, and leave every decision to the services.

Retries are NOT Celery's: `run_job` never calls self.retry. The job row counts attempts and
the runner re-publishes with a countdown, so a redelivered message, a sweeper re-publish and
a retry all go through the same claim. Late acks and reject-on-worker-lost come from settings.
Nothing imports this module to publish: publish.py sends these tasks by name.
"""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, ignore_result=True, max_retries=0)
def run_job(job_id: str) -> None:
    from claudeapp.jobs import runner

    runner.run(job_id=job_id)


@shared_task(acks_late=True, ignore_result=True, max_retries=0)
def deliver_webhook(job_id: str, attempt: int = 1) -> None:
    from claudeapp.jobs import webhooks

    webhooks.deliver(job_id=job_id, attempt=attempt)


@shared_task(ignore_result=True)
def sweep() -> None:
    from claudeapp.jobs import sweeper

    sweeper.sweep()


@shared_task(ignore_result=True)
def purge_finished() -> None:
    from claudeapp.jobs import sweeper

    sweeper.purge_finished()


@shared_task(ignore_result=True)
def process_batches() -> None:
    """Beat, every JOBS_BATCH_POLL_SECONDS: submit due Message Batches, poll open ones, fan out results."""
    from claudeapp.jobs import batches

    batches.tick()
