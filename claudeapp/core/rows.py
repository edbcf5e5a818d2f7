"""One INSERT ... RETURNING id for an unsaved model instance, without Model.save()'s machinery.

For append-only rows written on every call (routing decisions, budget reservations), where
save()'s signal dispatch and per-call SQL compilation cost more CPU than the round trip. The SQL
is built once per model; field defaults and pre_save hooks (auto_now_add) still apply. Nothing
listens for these models' save signals; do not use it for a model whose receivers must run.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections, models

M = TypeVar("M", bound=models.Model)


@functools.cache
def _plan(model: type[models.Model], with_pk: bool = False) -> tuple[str, tuple[models.Field, ...]]:
    fields = tuple(f for f in model._meta.concrete_fields if with_pk or not f.primary_key)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    pk = connection.ops.quote_name(model._meta.pk.column)
    sql = (
        f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({columns}) "  # noqa: S608  (names from model meta)
        f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {pk}"
    )
    return sql, fields


def insert(instance: models.Model) -> int:
    """Insert `instance` (unsaved), set its pk and mark it saved; return the pk (its own, when set)."""
    sql, fields = _plan(type(instance), instance.pk is not None)
    values = [f.get_db_prep_save(f.pre_save(instance, add=True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        pk = cursor.fetchone()[0]
    return saved(instance, pk).pk


def insert_sql(instance: models.Model, *, select_from: str) -> tuple[str, dict[str, object]]:
    """`INSERT ... SELECT <instance's values> FROM <select_from> RETURNING pk`, with named parameters
    (v0, v1...): the row goes in once per row of `select_from`, a CTE of the caller's statement. An
    instance whose pk is set (drawn ahead: core/idblocks.py) goes in under that pk."""
    sql, fields = _select_plan(type(instance), select_from, instance.pk is not None)
    db = connections[DEFAULT_DB_ALIAS]  # resolved once, not per field (django.db.connection looks it up each time)
    return sql, {f"v{i}": f.get_db_prep_save(f.pre_save(instance, add=True), db) for i, f in enumerate(fields)}


@functools.cache
def _select_plan(model: type[models.Model], select_from: str, with_pk: bool) -> tuple[str, tuple[models.Field, ...]]:
    _, fields = _plan(model, with_pk)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    pk = connection.ops.quote_name(model._meta.pk.column)
    # Cast: bound server-side (core/prepared.py), a value in a SELECT list has no column to take its type from.
    placeholders = ", ".join(f"%(v{i})s::{f.cast_db_type(connection)}" for i, f in enumerate(fields))
    sql = (
        f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({columns}) "  # noqa: S608  (names from model meta)
        f"SELECT {placeholders} FROM {select_from} RETURNING {pk}"
    )
    return sql, fields


def saved(instance: models.Model, pk: int) -> models.Model:
    """Mark `instance` saved as `pk` (after an insert_sql statement)."""
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = DEFAULT_DB_ALIAS  # the alias of django.db.connection, which wrote it
    return instance


def loaded(model: type[M], **values: Any) -> M:
    """An instance of `model` as if loaded from the database with just `values` (attnames): built the way
    Django unpickles one, without Model.__init__'s per-field defaults and init signals (~20 µs each, on
    every call for the key and its owner). A field not given is deferred: reading it queries the row."""
    instance = model.__new__(model)
    instance.__dict__.update(values)
    instance._state = models.base.ModelState()
    instance._state.adding, instance._state.db = False, DEFAULT_DB_ALIAS
    return instance


def copy_in(model: type[models.Model], columns: Sequence[str], values: Iterable[tuple[Any, ...]]) -> None:
    """Write rows of `model` with one COPY on this thread's connection: each tuple gives `columns`, in
    order, as database values. For rows written in bulk off the call (the request log, routing decisions):
    ~10 µs of CPU a row, where bulk_create's per-value INSERT compilation cost ~85 µs."""
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({names}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in values:
            copy.write_row(row)
