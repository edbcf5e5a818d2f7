"""A cursor that sends its values apart from the SQL, for the few statements every call runs.

Django's psycopg cursors bind client-side: the values are quoted into the SQL text, so Postgres
parses and plans each execution anew. For the budget hold and the settlement (CTEs of 1-2.5 KB)
planning cost more than running them (EXPLAIN on a warm connection: hold 0.07 ms planning / 0.06 ms
execution, settlement 0.16 / 0.06). On this cursor psycopg binds server-side, and once a statement
has run `prepare_threshold` (5) times on a connection it is prepared there: planned once per
connection for good (Postgres re-plans it itself after DDL on its tables).

It is Django's own cursor wrapper around a plain psycopg cursor: database errors come out as Django's,
queries are counted and logged as any other, transactions are the connection's. Values without a
type of their own (None) need a cast where Postgres cannot infer one (core/rows.py's INSERT ... SELECT).

DB_PREPARED_STATEMENTS=0 falls back to Django's cursor: for a pooler that cannot keep prepared
statements (PgBouncer in transaction mode before 1.21).
"""

from __future__ import annotations

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.postgresql.psycopg_any import register_tzloader
from django.db.backends.utils import CursorWrapper
from psycopg.pq import Format

_TIMESTAMPTZ = psycopg.adapters.types["timestamptz"].oid


def cursor() -> CursorWrapper:
    """A cursor on this thread's connection whose repeated statements are prepared (see above)."""
    connection = connections[DEFAULT_DB_ALIAS]  # once: each attribute of django.db.connection looks it up again
    if not settings.DB_PREPARED_STATEMENTS:
        return connection.cursor()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = psycopg.Cursor(connection.connection)
        if connection.timezone != raw.adapters.get_loader(_TIMESTAMPTZ, Format.TEXT).timezone:
            register_tzloader(connection.timezone, raw)  # as Django's create_cursor does
        return connection._prepare_cursor(raw)  # Django 5.2's; tests/billing/test_prepared_statements.py
