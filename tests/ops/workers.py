"""Celery remote control for tests that need their own worker to run a job: other workers on the same broker
(tests/jobs' session worker stays alive for the whole run) stop consuming the job queues meanwhile."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

JOB_QUEUES = ("interactive", "bulk")


@contextmanager
def sole_consumer(worker_name: str) -> Iterator[None]:
    """Every worker but `worker_name` (as passed to -n, %h allowed) stops consuming the job queues until the
    block ends."""
    from celery import current_app

    ours = worker_name.replace("%h", socket.gethostname())
    names: set[str] = set()
    for _ in range(10):  # a busy machine may answer late: ask until our own worker has answered
        names |= {name for reply in current_app.control.ping(timeout=2.0) for name in reply}
        if ours in names:
            break
    assert ours in names, f"our worker did not answer a ping; others that did: {names}"
    others = sorted(names - {ours})
    for queue in JOB_QUEUES if others else ():
        current_app.control.cancel_consumer(queue, destination=others, reply=True, timeout=2.0)
    try:
        yield
    finally:
        for queue in JOB_QUEUES if others else ():
            current_app.control.add_consumer(queue, destination=others, reply=True, timeout=2.0)
