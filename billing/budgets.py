"""Budgets: reserve the worst case before an upstream call, settle the exact cost after it.

Every budget covering the principal (its user, partner key, groups, global) is held with one
conditional UPDATE each, in pk order, in one short transaction, so concurrent callers can never
push spent + reserved past a hard limit and never deadlock. No row lock outlives the transaction;
nothing is held across the network call. Periods roll over lazily inside those same UPDATEs.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Collection
from typing import Any
from zoneinfo import ZoneInfo

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from billing import ledger, redisconn
from billing.costs import Usage, worst_case_micros
from billing.errors import BudgetExceeded
from billing.models import Budget, BudgetAlert, LedgerEntry, PriceVersion, Reservation, parse_thresholds
from billing.prices import current_price
from claudeapp.accounts.principals import Principal
from claudeapp.core import prepared, rows
from claudeapp.core.idblocks import IdBlock

log = logging.getLogger(__name__)

_TABLE = Budget._meta.db_table
# The raw SQL below interpolates only table names and these fixed fragments; values go as parameters.
# The current period's start for this row; a row whose stored start is older has rolled over.
_START = "(CASE WHEN period = 'day' THEN %(day)s ELSE %(month)s END)"
_SPENT = f"(CASE WHEN period_start < {_START} THEN 0 ELSE spent_micros END)"
_HOLD_SQL = (
    f"UPDATE {_TABLE} SET spent_micros = {_SPENT}, period_start = GREATEST(period_start, {_START}), "  # noqa: S608
    "reserved_micros = reserved_micros + %(amount)s "
    f"WHERE id = %(id)s AND enabled AND {_SPENT} + reserved_micros + %(amount)s <= limit_micros"
)
_CHARGE_SQL = (
    f"UPDATE {_TABLE} SET spent_micros = {_SPENT} + %(cost)s, period_start = GREATEST(period_start, {_START}), "  # noqa: S608
    "reserved_micros = reserved_micros - %(release)s WHERE id = %(id)s "
    "RETURNING spent_micros, limit_micros, period_start, alert_thresholds, alert_webhook_url"
)
_RELEASE_SQL = f"UPDATE {_TABLE} SET reserved_micros = reserved_micros - %(release)s WHERE id = %(id)s"  # noqa: S608
_CLAIM_SQL = f"DELETE FROM {Reservation._meta.db_table} WHERE id = %s"  # noqa: S608
# settle() for one budget: after the ledger's CTEs (`e`, `r`), the claim and the charge, each only when
# the entry went in; one row back: the entry's id (or NULL) and the charged budget's figures for alerts.
_SETTLE_ONE_SQL = "".join(
    (
        "WITH {ctes}, ",
        f"d AS (DELETE FROM {Reservation._meta.db_table} WHERE id = %(reservation)s ",  # noqa: S608
        "AND EXISTS (SELECT 1 FROM e) RETURNING id), ",
        f"c AS (UPDATE {_TABLE} SET spent_micros = {_SPENT} + %(cost)s, ",  # noqa: S608
        f"period_start = GREATEST(period_start, {_START}), ",
        "reserved_micros = reserved_micros - (CASE WHEN EXISTS (SELECT 1 FROM d) THEN %(release)s ELSE 0 END) ",
        "WHERE id = %(id)s AND EXISTS (SELECT 1 FROM e) ",
        "RETURNING spent_micros, limit_micros, period_start, alert_thresholds, alert_webhook_url) ",
        "SELECT (SELECT id FROM e), c.* FROM (SELECT 1) AS one LEFT JOIN c ON true",
    )
)


def _load_coverage() -> dict[tuple[str, int | None], list[int]]:
    by_scope: dict[tuple[str, int | None], list[int]] = {}
    for pk, scope, scope_id in Budget.objects.filter(enabled=True).values_list("pk", "scope", "scope_id"):
        by_scope.setdefault((scope, scope_id), []).append(pk)
    return by_scope


# Which enabled budgets exist, per scope: a per-process copy (one small row per budget), so the hot
# path asks Postgres nothing for principals no budget covers. A budget created or enabled in another
# process applies here within BILLING_CACHE_SECONDS (like prices and rate-limit policies); limits
# and spend are always read by the hold UPDATE itself, and a cached id whose row is gone or disabled
# makes reserve() reload and retry (see _StaleCoverage).
_coverage = redisconn.cached("budgets", _load_coverage)


class _StaleCoverage(Exception):
    """A cached budget id no longer names an enabled budget."""


def period_bounds(period: str, at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the day or month containing `at`, in BILLING_TIME_ZONE (DST-safe: wall-clock midnight)."""
    tz = ZoneInfo(settings.BILLING_TIME_ZONE)
    local = at.astimezone(tz)
    if period == Budget.Period.DAY:
        start = dt.datetime(local.year, local.month, local.day, tzinfo=tz)
        following = start.date() + dt.timedelta(days=1)
        end = dt.datetime(following.year, following.month, following.day, tzinfo=tz)
    else:
        start = dt.datetime(local.year, local.month, 1, tzinfo=tz)
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        end = dt.datetime(year, month, 1, tzinfo=tz)
    # In UTC: Python subtracts and compares same-zone datetimes by wall clock, which is wrong across DST.
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def _starts(at: dt.datetime) -> dict[str, dt.datetime]:
    return {"day": period_bounds("day", at)[0], "month": period_bounds("month", at)[0]}


def covering_ids(principal: Principal) -> list[int]:
    """The enabled budgets covering `principal`, in pk order, from the per-process copy."""
    by_scope = _coverage.get()
    scopes: list[tuple[str, int | None]] = [("global", None), ("user", principal.user_id)]
    if principal.kind == "partner_key":
        scopes.append(("partner_key", principal.id))
    scopes += [("group", g) for g in principal.group_ids]
    return sorted({pk for scope in scopes for pk in by_scope.get(scope, ())})


def covering(principal: Principal) -> Q:
    q = Q(scope="global") | Q(scope="user", scope_id=principal.user_id)
    if principal.kind == "partner_key":
        q |= Q(scope="partner_key", scope_id=principal.id)
    if principal.group_ids:
        q |= Q(scope="group", scope_id__in=sorted(principal.group_ids))
    return q


def reserve(
    *,
    principal: Principal,
    model_id: str,
    input_tokens: int,
    max_tokens: int,
    batch: bool = False,
    hold_for: dt.timedelta | None = None,
) -> Reservation:
    """Hold the worst-case cost on every budget covering `principal`, all or none.

    Raises BudgetExceeded naming the first budget (in pk order) that cannot take it, PriceMissing
    for an unpriced model. With no budget the returned Reservation is unsaved (pk None): nothing is
    held and settle/release skip the budget step. `hold_for` outlives BILLING_RESERVATION_REAP_AGE
    for calls known to run long (batches).
    """
    reservation = _unheld(principal, model_id, input_tokens, max_tokens, batch=batch, hold_for=hold_for)
    return take(reservation=reservation, principal=principal)


def ready(*, principal: Principal, model_id: str, input_tokens: int, max_tokens: int) -> Reservation:
    """The hold `reserve` would take, not taken yet: priced, the budgets covering `principal` named, and its
    id drawn ahead (pk None when no budget covers the principal: nothing will be held). A call's write-ahead
    record names it while `take` takes it (calls/admission.py). Raises PriceMissing."""
    reservation = _unheld(principal, model_id, input_tokens, max_tokens)
    reservation.budget_ids = covering_ids(principal)
    if reservation.budget_ids:
        reservation.pk = _reservation_ids.next()
    return reservation


def take(*, reservation: Reservation, principal: Principal) -> Reservation:
    """Take the hold of an unsaved `reservation` (from `ready`, or `reserve`'s own), under its pk when it has
    one. Budgets deleted or disabled since the covering ones were read are left out (the re-read ones are
    `reservation.budget_ids` after; pk None when none covers any more). Raises BudgetExceeded."""
    ids = reservation.budget_ids or covering_ids(principal)
    for _ in range(2):
        try:
            return _hold(reservation, ids)
        except _StaleCoverage:
            _coverage.clear()  # a budget was deleted or disabled since our copy was read: re-read it
            ids = covering_ids(principal)
    return _hold(reservation, ids)


def _unheld(principal: Principal, model_id: str, input_tokens: int, max_tokens: int, **options: Any) -> Reservation:
    batch, hold_for = options.get("batch", False), options.get("hold_for")
    price = current_price(model_id=model_id)
    return Reservation(
        principal_kind=principal.kind,
        principal_id=principal.id,
        user_id=principal.user_id,
        model_id=model_id,
        price_version=price,
        amount_micros=worst_case_micros(price=price, input_tokens=input_tokens, max_tokens=max_tokens, batch=batch),
        batch=batch,
        expires_at=timezone.now() + hold_for if hold_for else None,
    )


_reservation_ids = IdBlock("billing.Reservation")


def check(*, principal: Principal, model_id: str, input_tokens: int, max_tokens: int, batch: bool = False) -> None:
    """Raise BudgetExceeded when this worst case would not fit now; holds nothing (the hold is
    taken in a transaction that is rolled back)."""
    with transaction.atomic():
        reserve(principal=principal, model_id=model_id, input_tokens=input_tokens, max_tokens=max_tokens, batch=batch)
        transaction.set_rollback(True)


def _hold(reservation: Reservation, ids: list[int]) -> Reservation:
    reservation.budget_ids = ids
    if not ids:
        reservation.pk = None  # nothing covers the principal: no row (an id drawn ahead goes unused), no transaction
        return reservation
    if len(ids) == 1:
        return _hold_one(reservation, ids[0])
    with transaction.atomic():
        params = _starts(timezone.now())
        with prepared.cursor() as cursor:
            for pk in ids:
                cursor.execute(_HOLD_SQL, {**params, "id": pk, "amount": reservation.amount_micros})
                if cursor.rowcount != 1:
                    raise _exceeded(pk, reservation.amount_micros)  # rolls back the holds already taken
        reservation.budget_ids = ids
        rows.insert(reservation)
    return reservation


# A hold that is its own transaction commits without waiting for the WAL flush (~0.25 ms, with a tail of
# several ms, on every call). All it risks is the hold itself, on a Postgres crash in the next few hundred
# ms: the reservation row and the budget's reserved_micros go together (one statement), and the call's
# settlement bills it all the same ("a reservation already released is still billed"; a process killed
# meanwhile too leaves its record to a reaper that reads the missing row as a hold never taken, and bills
# nothing: two faults at once). The bill, the
# settlement, stays a synchronous commit; so does a hold on several budgets (a transaction of several
# statements, the rarer case). Inside a caller's transaction the hold never changes how that one commits.
_ASYNC_COMMIT = "a AS (SELECT set_config('synchronous_commit', 'off', true)), "


def _hold_one(reservation: Reservation, pk: int) -> Reservation:
    """The common case, one covering budget: the conditional UPDATE and the reservation row in one
    statement (one round trip, atomic on its own), the row written only when the hold was taken."""
    reservation.budget_ids = [pk]
    alone = not connection.in_atomic_block
    insert, values = rows.insert_sql(reservation, select_from="h, a" if alone else "h")
    sql = f"WITH {_ASYNC_COMMIT if alone else ''}h AS ({_HOLD_SQL} RETURNING id) {insert}"
    with prepared.cursor() as cursor:
        cursor.execute(sql, {**_starts(timezone.now()), "id": pk, "amount": reservation.amount_micros, **values})
        row = cursor.fetchone()
    if row is None:
        raise _exceeded(pk, reservation.amount_micros)
    return rows.saved(reservation, row[0])


def _exceeded(pk: int, amount: int) -> BudgetExceeded | _StaleCoverage:
    # Read after the refused UPDATE, outside its lock: the figures are what the caller is told, not a
    # decision (the UPDATE decided), so a moment's drift between the two does no harm.
    budget = Budget.objects.filter(pk=pk).first()
    if budget is None or not budget.enabled:
        return _StaleCoverage()
    start, end = period_bounds(budget.period, timezone.now())
    return BudgetExceeded(
        scope=budget.scope,
        scope_id=budget.scope_id,
        limit_micros=budget.limit_micros,
        spent_micros=0 if budget.period_start < start else budget.spent_micros,
        resets_at=end,
        budget_id=budget.pk,
        period=budget.period,
        held_micros=budget.reserved_micros,
        requested_micros=amount,
    )


def settle(
    *,
    reservation: Reservation,
    usage: Usage,
    event_key: str,
    kind: str,
    subject: str,
    upstream_request_id: str = "",
    upstream_message_id: str = "",
    model_id: str | None = None,
) -> LedgerEntry:
    """Bill the exact cost and turn the hold into spend, in one transaction; idempotent by event_key.

    `model_id` names the model that actually answered when a fallback served the call; the price is
    the reserved model's snapshot otherwise. A reservation already released (e.g. reaped) is still
    billed: the spend is added without releasing a second time.
    """
    model_id = model_id or reservation.model_id
    price = settle_price(reservation, model_id)
    principal = Principal(kind=reservation.principal_kind, id=reservation.principal_id, user_id=reservation.user_id)  # type: ignore[arg-type]
    entry = ledger.entry_for(
        principal=principal,
        kind=kind,
        subject=subject,
        model_id=model_id,
        usage=usage,
        price=price,
        event_key=event_key,
        batch=reservation.batch,
        upstream_request_id=upstream_request_id,
        upstream_message_id=upstream_message_id,
    )
    if len(reservation.budget_ids) == 1 and reservation.pk is not None:
        return _settle_one(reservation, entry)
    with transaction.atomic():
        entry, created = ledger.insert(entry=entry)
        if created and reservation.budget_ids:
            held = _claim(reservation)
            _charge(reservation, cost=entry.cost_micros, release=reservation.amount_micros if held else 0)
    return entry


def settle_price(reservation: Reservation, model_id: str) -> PriceVersion:
    """The price a settlement bills at: the hold's snapshot for the reserved model (a price edited
    mid-call does not change it), the current price for a fallback model."""
    return reservation.price_version if model_id == reservation.model_id else current_price(model_id=model_id)


def _settle_one(reservation: Reservation, entry: LedgerEntry) -> LedgerEntry:
    """settle() for one covering budget in one statement: the entry and its rollup, the claim of the
    reservation and the charge, each only when the entry went in (a known event key changes nothing)."""
    ctes, params = ledger.insert_ctes(entry)
    budget_id = reservation.budget_ids[0]
    sql = _SETTLE_ONE_SQL.replace("{ctes}", ctes)
    params.update(
        _starts(timezone.now()),
        reservation=reservation.pk, cost=entry.cost_micros, release=reservation.amount_micros, id=budget_id,
    )  # fmt: skip
    with prepared.cursor() as cursor:  # atomic on its own; on_commit hooks run when it is durable
        cursor.execute(sql, params)
        pk, *charged = cursor.fetchone()
    entry, created = ledger.inserted(entry, pk)
    if created and charged[0] is not None:
        _alert_if_crossed(budget_id, *charged)
    return entry


def _claim(reservation: Reservation) -> bool:
    """Delete the reservation row; True only for the one caller that removed it (settle vs release vs reaper)."""
    with prepared.cursor() as cursor:  # plain SQL: no Collector, nothing cascades from a reservation
        cursor.execute(_CLAIM_SQL, [reservation.pk])
        return cursor.rowcount == 1


def _charge(reservation: Reservation, *, cost: int, release: int) -> None:
    params = _starts(timezone.now())
    with prepared.cursor() as cursor:
        for pk in sorted(reservation.budget_ids):
            cursor.execute(_CHARGE_SQL, {**params, "id": pk, "cost": cost, "release": release})
            row = cursor.fetchone()
            if row:
                _alert_if_crossed(pk, *row)


def release(*, reservation: Reservation) -> bool:
    """Give the hold back when the upstream call failed or was refused. False when already gone."""
    if reservation.pk is None:
        return False
    with transaction.atomic():
        if not _claim(reservation):
            return False
        with prepared.cursor() as cursor:
            for pk in sorted(reservation.budget_ids):
                cursor.execute(_RELEASE_SQL, {"id": pk, "release": reservation.amount_micros})
    return True


# Who else may still settle a hold: each returns the reservation ids it covers (the in-flight reaper
# of claudeapp.calls registers here, so a hold whose call was charged upstream is billed, not released).
_hold_keepers: list[Callable[[], Collection[int]]] = []


def keep_holds(keeper: Callable[[], Collection[int]]) -> None:
    if keeper not in _hold_keepers:
        _hold_keepers.append(keeper)


def reap_stale(*, older_than: dt.timedelta) -> int:
    """Release holds left by processes that died between reserve and settle, except those a registered
    keeper still covers (`keep_holds`). Returns how many."""
    now = timezone.now()
    kept: set[int] = set()
    for keeper in _hold_keepers:
        try:
            kept.update(keeper())
        except Exception as exc:  # settle bills a released hold all the same: releasing early costs nothing
            log.warning("billing: could not ask which holds are still covered (%s)", exc)
    stale = (
        Reservation.objects.filter(Q(expires_at__isnull=True, created_at__lt=now - older_than) | Q(expires_at__lt=now))
        .exclude(pk__in=kept)
        .order_by("pk")[:1000]
    )
    released = sum(release(reservation=r) for r in stale)
    if released:
        log.warning("billing: released %d stale budget reservations", released)
    return released


def roll_over_periods() -> int:
    """Zero spend of budgets whose period ended (the reserve/settle UPDATEs do it lazily too; this keeps
    the admin's figures current for idle budgets). Same rule as the lazy path, so the two never disagree."""
    sql = f"UPDATE {_TABLE} SET spent_micros = 0, period_start = {_START} WHERE period_start < {_START}"  # noqa: S608
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, _starts(timezone.now()))
        return cursor.rowcount


def _alert_if_crossed(
    pk: int, spent: int, limit: int, period_start: dt.datetime, thresholds: str, webhook: str
) -> None:
    from billing import alert_subscriptions as subscriptions  # kept local: only the alert path needs it

    if limit <= 0 or spent <= 0:
        return
    crossed = [t for t in parse_thresholds(thresholds) if spent * 100 >= limit * t]
    partners = subscriptions.watched(pk)  # some partner key set its own thresholds here (cached: no query)
    if not crossed and not partners:
        return
    # The operator's thresholds, then each subscription's (read live), each once per period and audience.
    columns = "(budget_id, subscription_id, period_start, threshold_percent, spent_micros, limit_micros, created_at)"
    select = "SELECT %(id)s, NULL::bigint, %(start)s, t, %(spent)s, %(limit)s, now() FROM unnest(%(crossed)s::int[]) t"
    if partners:
        select += (
            " UNION ALL SELECT s.budget_id, s.id, %(start)s, t, %(spent)s, %(limit)s, now() "  # noqa: S608
            f"FROM {subscriptions.TABLE} s, unnest(s.thresholds) t "
            "WHERE s.budget_id = %(id)s AND %(spent)s * 100 >= %(limit)s * t"
        )
    sql = (
        f"INSERT INTO {BudgetAlert._meta.db_table} {columns} {select} "
        "ON CONFLICT DO NOTHING RETURNING id, threshold_percent, subscription_id"
    )
    params = {"id": pk, "start": period_start, "spent": spent, "limit": limit, "crossed": crossed}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fired = cursor.fetchall()
    for alert_id, threshold, subscription_id in fired:
        log.warning("billing: budget %s reached %s%% (%s of %s micros)", pk, threshold, spent, limit)
        if subscription_id is None:
            transaction.on_commit(functools.partial(_post_later, alert_id))  # e-mail, and the webhook when set
        else:  # the partner's own webhook, signed with its key's secret (by name: api imports billing)
            task = "claudeapp.api.tasks.post_partner_budget_alert"
            transaction.on_commit(functools.partial(current_app.send_task, task, args=[alert_id]))


def _post_later(alert_id: int) -> None:
    # By name: billing.tasks imports this module to run its beat tasks.
    current_app.send_task("billing.tasks.post_budget_alert", args=[alert_id])


@receiver(post_save, sender=Budget)
@receiver(post_delete, sender=Budget)
def _budgets_changed(**kwargs: object) -> None:
    _coverage.clear()  # this process (and a test inside one transaction) sees the change at once
    transaction.on_commit(_coverage.bump)  # every process, once it is visible to them


def start_from_actual_spend(*, budget_id: int) -> int:
    """Set a new (or re-scoped) budget's spend to what its scope has already spent this period, from
    the ledger, so a budget created mid-period does not start at $0. Returns the spend it starts from.

    The row is locked first, then the sum is read in a second statement (a fresh snapshot under READ
    COMMITTED): a charge that was settling on this budget meanwhile is committed and in the sum, never
    counted twice and never lost."""
    budget = Budget.objects.get(pk=budget_id)
    start, _ = period_bounds(budget.period, timezone.now())
    where, params = _scope_sql(budget)
    sql = (
        f"UPDATE {_TABLE} SET period_start = %s, spent_micros = (SELECT COALESCE(SUM(cost_micros), 0) "  # noqa: S608
        f"FROM {LedgerEntry._meta.db_table} WHERE created_at >= %s AND {where}) WHERE id = %s RETURNING spent_micros"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {_TABLE} WHERE id = %s FOR UPDATE", [budget_id])  # noqa: S608
        cursor.execute(sql, [start, start, *params, budget_id])
        return cursor.fetchone()[0]


def _scope_sql(budget: Budget) -> tuple[str, list[object]]:
    """The ledger rows a budget covers, as a WHERE fragment (the same principals as covering())."""
    from django.contrib.auth import get_user_model

    if budget.scope == "user":
        return "user_id = %s", [budget.scope_id]
    if budget.scope == "partner_key":
        return "principal_kind = 'partner_key' AND principal_id = %s", [budget.scope_id]
    if budget.scope == "group":
        through = get_user_model().groups.through._meta
        return (
            f"user_id IN (SELECT {through.get_field('user').column} FROM {through.db_table} "  # noqa: S608
            f"WHERE {through.get_field('group').column} = %s)",
            [budget.scope_id],
        )
    return "TRUE", []
