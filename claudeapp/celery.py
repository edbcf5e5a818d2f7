"""The Celery app. Reliability settings live in settings.py (CELERY_*)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "claudeapp.settings")

app = Celery("claudeapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def _django_logging(**_: Any) -> None:
    """Workers log through settings.LOGGING (JSON lines with the request id), not Celery's own format."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


def _connect_log_context() -> None:
    # A job's worker lines carry the id of the request that published it (claudeapp/core/logcontext.py).
    from claudeapp.core import logcontext

    signals.before_task_publish.connect(logcontext.add_request_header, weak=False)
    signals.task_prerun.connect(logcontext.bind_task, weak=False)
    # One structured line per job attempt, as the web writes one per call (claudeapp/ops/job_calls.py).
    from claudeapp.ops import job_calls

    signals.task_postrun.connect(job_calls.log_attempt, weak=False)
    # Each worker process beats from its start, so the health console sees idle workers too: prefork
    # children when they start; with the threads or solo pool, the worker's own process when ready.
    signals.worker_process_init.connect(_start_heartbeat, weak=False)
    signals.worker_ready.connect(_start_heartbeat_unless_prefork, weak=False)


def _start_heartbeat(**_: Any) -> None:
    from claudeapp.jobs import heartbeat  # imports models: only once Django is set up

    heartbeat.start()


def _start_heartbeat_unless_prefork(sender: Any = None, **_: Any) -> None:
    pool = getattr(getattr(sender, "controller", None), "pool", None)
    if not type(pool).__module__.endswith(".prefork"):  # prefork's parent runs no job: its children beat
        _start_heartbeat()


_connect_log_context()
