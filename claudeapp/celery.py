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


def _survive_broker_loss() -> None:
    """Keep a worker alive when its Redis broker goes away.

    On a lost broker connection, celery 5.7's consumer collects the connection (the transport drops
    its client) and closes it, then reconnects on a new one. Two things still reach the old channel
    afterwards: the close itself, which restores the channel's unacknowledged messages, and the ack
    of a job that was running meanwhile and ends later. Both ask the torn-down transport for its
    connection parameters and get an AttributeError, which neither `ignore_errors` (around the close)
    nor `ack_log_error` (around the ack) catches: the worker exits "Unrecoverable error" on every
    broker restart while a job runs or a retry waits (acks_late: nearly always).

    So a channel whose connection is gone raises what it is, a connection error, which both callers
    handle: the close goes on, the ack is logged as lost. A message neither restored nor acked stays
    in the broker's unacked set (restored after the visibility timeout if the broker kept it, then a
    no-op: the job's claim refuses a second run), and the job table is the truth anyway: the sweeper
    republishes what was lost (claudeapp/jobs/sweeper.py). tests/chaos (the broker cell) checks that
    the workers are still alive after the broker comes back.
    """
    from kombu.transport import redis as kombu_redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    original = kombu_redis.Channel._connparams
    if getattr(original, "_survives_broker_loss", False):
        return

    def _connparams(self: Any, asynchronous: bool = False) -> Any:
        if getattr(self.connection, "client", None) is None:
            raise RedisConnectionError("this broker channel's connection was closed (the broker went away)")
        return original(self, asynchronous=asynchronous)

    _connparams._survives_broker_loss = True  # type: ignore[attr-defined]
    kombu_redis.Channel._connparams = _connparams


def _reuse_broker_clients() -> None:
    """kombu's Redis channel builds a new redis.Redis object for every ack, unacked-index update and
    restore (`conn_or_acquire` -> `_create_client`): about 10% of a busy worker's CPU (py-spy,
    bench/queue_throughput.py), all of it in the one consumer thread every job's message passes through.
    A redis.Redis object is a thin, thread-safe front of its connection pool (each command takes a
    connection from the pool): one per channel and pool does. A new pool (after a broker loss) gets a
    new client; the asynchronous (BRPOP) client is left to kombu."""
    from kombu.transport import redis as kombu_redis

    original = kombu_redis.Channel._create_client
    if getattr(original, "_reuses_clients", False):
        return

    def _create_client(self: Any, asynchronous: bool = False) -> Any:
        if asynchronous:
            return original(self, asynchronous=True)
        pool = self.pool
        cached = self.__dict__.get("_gateway_sync_client")
        if cached is None or cached[0] is not pool:
            cached = self.__dict__["_gateway_sync_client"] = (pool, original(self))
        return cached[1]

    _create_client._reuses_clients = True  # type: ignore[attr-defined]
    kombu_redis.Channel._create_client = _create_client


_connect_log_context()
_survive_broker_loss()
_reuse_broker_clients()
