"""The append-only ledger: one row per billed upstream call, at most one per event key.

`record` is idempotent: a retried task, a redelivered Celery message or a re-run settle with the
same event key gets the entry written the first time, and the rollup is bumped only once.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone

from billing.costs import Usage, compute_cost
from billing.models import DailyRollup, LedgerEntry, PriceVersion
from claudeapp.accounts.principals import Principal
from claudeapp.core import metrics, prepared, rows

_TOKEN_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "cache_read_tokens",
)


def billing_day(at: dt.datetime) -> dt.date:
    return timezone.localtime(at, ZoneInfo(settings.BILLING_TIME_ZONE)).date()


def record(**fields: Any) -> LedgerEntry:
    """Bill one call (the fields of `entry_for`). Returns the existing entry when `event_key` was billed before."""
    entry, _ = record_once(**fields)
    return entry


def entry_for(
    *,
    principal: Principal,
    kind: str,
    subject: str,
    model_id: str,
    usage: Usage,
    price: PriceVersion,
    event_key: str,
    batch: bool = False,
    upstream_request_id: str = "",
    upstream_message_id: str = "",
) -> LedgerEntry:
    """The unsaved entry billing `usage` at `price`."""
    return LedgerEntry(
        event_key=event_key,
        principal_kind=principal.kind,
        principal_id=principal.id,
        user_id=principal.user_id,
        kind=kind,
        subject=subject,
        model_id=model_id,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_write_5m_tokens=usage.cache_write_5m_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cost_micros=compute_cost(price=price, usage=usage, batch=batch).total_micros,
        price_version=price,
        batch=batch,
        upstream_request_id=upstream_request_id,
        upstream_message_id=upstream_message_id,
    )


def record_once(**fields: Any) -> tuple[LedgerEntry, bool]:
    """Like `record`, also saying whether this call wrote the entry (False: billed before)."""
    return insert(entry=entry_for(**fields))


def insert(*, entry: LedgerEntry) -> tuple[LedgerEntry, bool]:
    """Insert an unsaved entry and its rollup increment atomically; (existing, False) on a known event key."""
    return inserted(entry, _insert_with_rollup(entry))


def inserted(entry: LedgerEntry, pk: int | None) -> tuple[LedgerEntry, bool]:
    """After the statement of insert_ctes: the entry saved as `pk`, or the one billed before (pk None)."""
    if pk is None:
        return LedgerEntry.objects.get(event_key=entry.event_key), False
    rows.saved(entry, pk)
    transaction.on_commit(functools.partial(_count, entry))  # every billed token passes here, once
    return entry, True


def _count(entry: LedgerEntry) -> None:
    metrics.billed(
        model=entry.model_id,
        principal_kind=entry.principal_kind,
        input_tokens=entry.input_tokens,
        output_tokens=entry.output_tokens,
        cache_write_tokens=entry.cache_write_5m_tokens + entry.cache_write_1h_tokens,
        cache_read_tokens=entry.cache_read_tokens,
        cost_micros=entry.cost_micros,
    )


def insert_ctes(entry: LedgerEntry) -> tuple[str, dict[str, Any]]:
    """`e` (the entry, or no row on a known event key) and `r` (its rollup increment, only when the
    entry went in), as the CTEs of one statement, with their named parameters. A concurrent insert
    of the same key waits on the unique index, then takes the DO NOTHING branch; a data-modifying
    CTE always runs, once, so callers may add CTEs of their own that read `e`."""
    ctes, fields = _ctes_plan()
    db = connections[DEFAULT_DB_ALIAS]  # resolved once, not per field (django.db.connection looks it up each time)
    params: dict[str, Any] = {}
    for i, f in enumerate(fields):
        f.pre_save(entry, add=True)
        params[f"l{i}"] = f.get_db_prep_save(getattr(entry, f.attname), db)
    params.update(
        r_day=billing_day(entry.created_at), r_kind=entry.principal_kind, r_principal=entry.principal_id,
        r_model=entry.model_id, **{f"r_{c}": getattr(entry, c) for c in _SUMMED},
    )  # fmt: skip
    return ctes, params


_SUMMED = (*_TOKEN_COLUMNS, "cost_micros")


@functools.cache
def _ctes_plan() -> tuple[str, tuple[Any, ...]]:
    """insert_ctes' SQL, built once per process: it depends on the models alone."""
    fields = tuple(f for f in LedgerEntry._meta.concrete_fields if not f.primary_key)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = DailyRollup._meta.db_table
    increments = ", ".join(f"{c} = {table}.{c} + EXCLUDED.{c}" for c in ("requests", *_SUMMED))
    values = ", ".join(f"%(l{i})s" for i in range(len(fields)))
    rolled = ", ".join(f"%(r_{c})s" for c in _SUMMED)
    ctes = (
        f"e AS (INSERT INTO {LedgerEntry._meta.db_table} ({columns}) "  # noqa: S608  (names from model meta)
        f"VALUES ({values}) ON CONFLICT (event_key) DO NOTHING RETURNING id), "
        f"r AS (INSERT INTO {table} (day, principal_kind, principal_id, model_id, requests, {', '.join(_SUMMED)}) "
        f"SELECT %(r_day)s, %(r_kind)s, %(r_principal)s, %(r_model)s, 1, {rolled} FROM e "
        f"ON CONFLICT (day, principal_kind, principal_id, model_id) DO UPDATE SET {increments})"
    )
    return ctes, fields


def _insert_with_rollup(entry: LedgerEntry) -> int | None:
    # One statement, so one round trip and atomic on its own (see insert_ctes).
    ctes, params = insert_ctes(entry)
    with prepared.cursor() as cursor:
        cursor.execute(f"WITH {ctes} SELECT id FROM e", params)  # noqa: S608  (CTEs from model meta)
        row = cursor.fetchone()
    return row[0] if row else None
