"""Primary keys drawn ahead from a table's own sequence, a block per process at a time.

For a row whose id must be known before it is written: a routing decision queued to be written in bulk
(routing/decisionlog.py), a budget hold that its call's write-ahead record names while the hold is being
taken (billing/budgets.ready). One extra round trip per `size` ids. The sequence never hands an id out
twice, so rows written with a drawn id and rows numbered by the column's default never collide; gaps are
harmless. A forked child (Celery prefork, uvicorn workers) starts with no ids: its parent's are its parent's.
"""

from __future__ import annotations

import os
import threading
from collections import deque

from django.apps import apps
from django.db import connection


class IdBlock:
    """next(): an unused id of `model_label`'s table (e.g. "billing.Reservation"), on this thread's connection."""

    def __init__(self, model_label: str, size: int = 64) -> None:
        self.model_label, self.size = model_label, size
        self._ids: deque[int] = deque()
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._sequence: str | None = None

    def next(self) -> int:
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._ids.clear()
            if not self._ids:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT nextval(%s) FROM generate_series(1, %s)", [self._sequence_name(), self.size])
                    self._ids.extend(row[0] for row in cursor.fetchall())
            return self._ids.popleft()

    def _sequence_name(self) -> str:
        if self._sequence is None:
            model = apps.get_model(self.model_label)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_get_serial_sequence(%s, %s)",
                    [connection.ops.quote_name(model._meta.db_table), model._meta.pk.column],
                )
                self._sequence = cursor.fetchone()[0]
        return self._sequence
