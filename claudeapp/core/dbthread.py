"""Run ORM work from async code: off the event loop, on a worker thread that hands its database
connection back to the pool afterwards, so an open stream holds no connection."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection


def in_db_thread(func):  # type: ignore[no-untyped-def]
    def run(*args, **kwargs):  # type: ignore[no-untyped-def]
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            connection.close()

    return sync_to_async(run, thread_sensitive=False)
