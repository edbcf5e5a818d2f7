"""Beat task of the call pipeline: settle the calls whose process died mid-call (calls/inflight.py).

Not an installed app's module: settings.CELERY_IMPORTS loads it in every worker and beat, which also
registers the in-flight records with budgets.reap_stale (a hold they cover is billed by the reaper,
never released unbilled).
"""

from __future__ import annotations

from celery import shared_task

from billing import budgets
from claudeapp.calls import inflight

budgets.keep_holds(inflight.live_holds)


@shared_task(ignore_result=True)
def reap_interrupted() -> int:
    """Bill each orphaned in-flight call once; returns how many were settled."""
    report = inflight.reap()
    return report.billed + report.already + report.released
