"""The append-only ledger: one row per billed upstream call, at most one per event key.

`record` is idempotent: a retried task, a redelivered Celery message or a re-run settle with the
same event key gets the entry written the first time, and the rollup is bumped only once.
"""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from billing.costs import Usage, compute_cost
from billing.models import DailyRollup, LedgerEntry, PriceVersion
from claudeapp.accounts.principals import Principal
from claudeapp.core import metrics

_TOKEN_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "cache_read_tokens",
)


def billing_day(at: dt.datetime) -> dt.date:
    return timezone.localtime(at, ZoneInfo(settings.BILLING_TIME_ZONE)).date()


def record(
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
    """Bill one call at `price`. Returns the existing entry when `event_key` was billed before."""
    entry, _ = record_once(**locals())
    return entry


def record_once(
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
) -> tuple[LedgerEntry, bool]:
    """Like `record`, also saying whether this call wrote the entry (False: billed before)."""
    return insert(
        entry=LedgerEntry(
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
    )


def insert(*, entry: LedgerEntry) -> tuple[LedgerEntry, bool]:
    """Insert an unsaved entry and its rollup increment atomically; (existing, False) on a known event key."""
    pk = _insert_with_rollup(entry)
    if pk is None:
        return LedgerEntry.objects.get(event_key=entry.event_key), False
    entry.pk = pk
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


def _insert_with_rollup(entry: LedgerEntry) -> int | None:
    # One statement, so one round trip and atomic on its own: the entry (or nothing on a known event key;
    # a concurrent insert of the same key waits on the unique index, then takes the DO NOTHING branch)
    # and, only when the entry went in, the rollup increment (a data-modifying CTE always runs, once).
    fields = [f for f in LedgerEntry._meta.concrete_fields if not f.primary_key]
    for f in fields:
        f.pre_save(entry, add=True)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    values = [f.get_db_prep_save(getattr(entry, f.attname), connection) for f in fields]
    table = DailyRollup._meta.db_table
    summed = (*_TOKEN_COLUMNS, "cost_micros")
    increments = ", ".join(f"{c} = {table}.{c} + EXCLUDED.{c}" for c in ("requests", *summed))
    sql = (
        f"WITH e AS (INSERT INTO {LedgerEntry._meta.db_table} ({columns}) "  # noqa: S608  (names from model meta)
        f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT (event_key) DO NOTHING RETURNING id), "
        f"r AS (INSERT INTO {table} (day, principal_kind, principal_id, model_id, requests, {', '.join(summed)}) "
        f"SELECT %s, %s, %s, %s, 1, {', '.join(['%s'] * len(summed))} FROM e "
        f"ON CONFLICT (day, principal_kind, principal_id, model_id) DO UPDATE SET {increments}) "
        "SELECT id FROM e"
    )
    values += [billing_day(entry.created_at), entry.principal_kind, entry.principal_id, entry.model_id]
    values += [getattr(entry, c) for c in summed]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    return row[0] if row else None
