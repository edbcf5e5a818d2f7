"""Beat tasks of the API package."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def settle_anthropic_batches() -> int:
    """Bill the results of /anthropic Message Batches that ended, whether or not the partner reads them."""
    from claudeapp.api import anthropic_batches  # imports models: only once Django is set up

    return anthropic_batches.settle_open()
