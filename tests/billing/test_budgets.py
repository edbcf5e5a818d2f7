from __future__ import annotations

import datetime as dt
import http.server
import json
import logging
import threading

import anthropic
import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from billing import budgets
from billing.costs import Usage
from billing.errors import BudgetExceeded
from billing.models import Budget, BudgetAlert, LedgerEntry, Reservation

OPUS = "claude-opus-5-5"
# Opus 5.5, 1000 input and max_tokens 500: held 1000 x 8 (1h write) + 500 x 20 = 18_000; billed 14_000.
HOLD, COST = 18_000, 14_000
PLAIN = Usage(input_tokens=1000, output_tokens=500)


def _reserve(principal, **extra):
    return budgets.reserve(principal=principal, model_id=OPUS, input_tokens=1000, max_tokens=500, **extra)


def _settle(reservation, event_key, usage=PLAIN):
    return budgets.settle(reservation=reservation, usage=usage, event_key=event_key, kind="message", subject=event_key)


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_callers_against_a_budget_for_ten_calls_get_exactly_ten_holds(
    seeded, principal_factory, budget_factory
):
    principal = principal_factory()
    budget = budget_factory(scope="user", scope_id=principal.user_id, limit_micros=10 * HOLD)
    callers = 50
    start, held_all = threading.Barrier(callers), threading.Barrier(callers)
    outcomes: list[str] = []

    def call(n: int) -> None:
        try:
            start.wait(timeout=60)
            try:
                reservation = _reserve(principal)
            except BudgetExceeded:
                outcomes.append("refused")
                reservation = None
            connection.close()  # back to the pool (20 per process) while waiting for the others
            held_all.wait(timeout=60)  # every hold is taken before anyone settles and frees headroom
            if reservation is not None:
                _settle(reservation, f"evt-{n}")
                outcomes.append("billed")
        finally:
            connection.close()

    threads = [threading.Thread(target=call, args=(n,)) for n in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    budget.refresh_from_db()
    assert outcomes.count("billed") == 10 and outcomes.count("refused") == 40
    assert budget.spent_micros == 10 * COST <= budget.limit_micros
    assert budget.reserved_micros == 0 and Reservation.objects.count() == 0
    assert LedgerEntry.objects.count() == 10


def test_settle_moves_the_hold_to_spend_at_the_exact_cost_and_only_once(seeded, principal_factory, budget_factory):
    principal = principal_factory()
    budget = budget_factory(scope="user", scope_id=principal.user_id)
    reservation = _reserve(principal)
    budget.refresh_from_db()
    assert (budget.reserved_micros, reservation.amount_micros) == (HOLD, HOLD)
    first = _settle(reservation, "evt-1")
    again = _settle(reservation, "evt-1")
    budget.refresh_from_db()
    assert first.pk == again.pk and first.cost_micros == COST
    assert (budget.spent_micros, budget.reserved_micros) == (COST, 0)


def test_a_reservation_is_released_when_the_upstream_call_fails(
    seeded, principal_factory, budget_factory, anthropic_client, emulator_reset
):
    principal = principal_factory()
    budget = budget_factory(scope="global")
    reservation = _reserve(principal)
    try:
        anthropic_client.messages.create(
            model=OPUS, max_tokens=500, messages=[{"role": "user", "content": "[[fault:529]] hello"}]
        )
    except anthropic.APIStatusError:
        budgets.release(reservation=reservation)
    budget.refresh_from_db()
    assert (budget.spent_micros, budget.reserved_micros) == (0, 0)
    assert not Reservation.objects.exists() and not LedgerEntry.objects.exists()
    assert budgets.release(reservation=reservation) is False  # a second release is a no-op


def test_a_stream_cut_mid_answer_bills_the_tokens_that_were_produced(
    seeded, principal_factory, budget_factory, anthropic_client, emulator_reset
):
    principal = principal_factory()
    budget = budget_factory(scope="global")
    reservation = _reserve(principal)
    usage = None
    # The cut surfaces as the transport's protocol error, whatever its class.
    with (
        pytest.raises(Exception),
        anthropic_client.messages.stream(
            model=OPUS, max_tokens=500, messages=[{"role": "user", "content": "[[fault:stream-cut:5]] tell me more"}]
        ) as stream,
    ):
        for event in stream:
            if event.type == "message_start":
                usage = event.message.usage.model_dump()
            elif event.type == "message_delta":
                usage["output_tokens"] = event.usage.output_tokens  # cumulative
    entry = _settle(reservation, "cut-1", usage=Usage.from_anthropic(usage))
    budget.refresh_from_db()
    assert 0 < entry.cost_micros < HOLD and budget.spent_micros == entry.cost_micros and budget.reserved_micros == 0


def test_the_refusal_names_the_budget_and_takes_no_hold_anywhere(seeded, principal_factory, budget_factory):
    principal = principal_factory(group_ids=frozenset({7}))
    roomy = budget_factory(scope="global", limit_micros=10 * HOLD)
    tight = budget_factory(scope="group", scope_id=7, period="day", limit_micros=HOLD - 1, spent_micros=5)
    with pytest.raises(BudgetExceeded) as caught:
        _reserve(principal)
    error = caught.value
    assert (error.scope, error.scope_id, error.limit_micros) == ("group", 7, HOLD - 1)
    assert error.resets_at == budgets.period_bounds("day", timezone.now())[1]
    roomy.refresh_from_db()
    tight.refresh_from_db()
    assert roomy.reserved_micros == 0 and tight.reserved_micros == 0


def test_every_budget_covering_the_principal_is_held(seeded, principal_factory, budget_factory):
    principal = principal_factory(kind="partner_key", group_ids=frozenset({3}))
    covering = [
        budget_factory(scope="global"),
        budget_factory(scope="user", scope_id=principal.user_id),
        budget_factory(scope="partner_key", scope_id=principal.id),
        budget_factory(scope="group", scope_id=3),
    ]
    other = budget_factory(scope="group", scope_id=4)
    reservation = _reserve(principal)
    assert sorted(reservation.budget_ids) == sorted(b.pk for b in covering)
    assert set(Budget.objects.filter(reserved_micros=HOLD)) == set(covering)
    other.refresh_from_db()
    assert other.reserved_micros == 0


def test_without_a_budget_there_is_no_limit_and_the_call_is_still_billed(seeded, principal_factory):
    reservation = _reserve(principal_factory())
    assert reservation.pk is None
    assert _settle(reservation, "free-1").cost_micros == COST


def test_reaping_releases_holds_of_dead_processes_and_a_late_settle_still_bills(
    seeded, principal_factory, budget_factory
):
    principal = principal_factory()
    budget = budget_factory(scope="global")
    orphan = _reserve(principal)
    long_batch = _reserve(principal, hold_for=dt.timedelta(hours=24))
    fresh = _reserve(principal)
    Reservation.objects.filter(pk__in=[orphan.pk, long_batch.pk]).update(
        created_at=timezone.now() - dt.timedelta(hours=2)
    )
    assert budgets.reap_stale(older_than=dt.timedelta(hours=1)) == 1
    budget.refresh_from_db()
    assert budget.reserved_micros == 2 * HOLD
    _settle(orphan, "late-1")  # the process was slow, not dead: bill it, without releasing twice
    budget.refresh_from_db()
    assert (budget.spent_micros, budget.reserved_micros) == (COST, 2 * HOLD)
    budgets.release(reservation=fresh)
    budgets.release(reservation=long_batch)
    budget.refresh_from_db()
    assert budget.reserved_micros == 0


def test_alerts_fire_once_per_threshold_per_period(seeded, principal_factory, budget_factory, caplog):
    principal = principal_factory()
    budget = budget_factory(scope="global", limit_micros=100_000, alert_thresholds="50, 80")
    caplog.set_level(logging.WARNING, logger="billing.budgets")
    for n in range(6):  # 14k each: 56k crosses 50% at the 4th, 84k crosses 80% at the 6th
        _settle(_reserve(principal), f"evt-{n}")
    assert sorted(BudgetAlert.objects.values_list("threshold_percent", flat=True)) == [50, 80]
    assert sum("reached 50%" in r.message for r in caplog.records) == 1
    # Next month: shift this month's state a month back, as if the calendar had moved on;
    # spend restarts from zero and the thresholds can fire again, once.
    last_month = budgets.period_bounds(
        "month", budgets.period_bounds("month", timezone.now())[0] - dt.timedelta(days=1)
    )[0]
    Budget.objects.filter(pk=budget.pk).update(period_start=last_month)
    BudgetAlert.objects.update(period_start=last_month)
    for n in range(4):
        _settle(_reserve(principal), f"next-{n}")
    budget.refresh_from_db()
    assert budget.spent_micros == 4 * COST
    assert BudgetAlert.objects.filter(threshold_percent=50).count() == 2
    assert BudgetAlert.objects.filter(threshold_percent=80).count() == 1


def test_an_alert_webhook_is_posted_after_commit(
    seeded, principal_factory, budget_factory, django_capture_on_commit_callbacks, settings
):
    from billing.tasks import post_budget_alert

    settings.BILLING_ALERT_WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on loopback

    received: list[dict] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.handle_request, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hook"
    budget_factory(scope="global", limit_micros=20_000, alert_thresholds="50", alert_webhook_url=url)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _settle(_reserve(principal_factory()), "evt-1")
    alert = BudgetAlert.objects.get()
    assert any("_post_later" in repr(c) for c in callbacks)
    post_budget_alert(alert.pk)  # what the worker runs once the callback enqueued it
    server.server_close()
    assert received[0]["threshold_percent"] == 50 and received[0]["spent_micros"] == COST


@override_settings(BILLING_TIME_ZONE="Asia/Tokyo")
def test_days_and_months_start_at_midnight_in_the_billing_time_zone():
    tokyo_0030_march_2 = dt.datetime(2026, 3, 1, 15, 30, tzinfo=dt.UTC)
    start, end = budgets.period_bounds("day", tokyo_0030_march_2)
    assert (start, end) == (
        dt.datetime(2026, 3, 1, 15, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC),
    )
    tokyo_0100_feb_1 = dt.datetime(2026, 1, 31, 16, 0, tzinfo=dt.UTC)
    start, end = budgets.period_bounds("month", tokyo_0100_feb_1)
    assert (start, end) == (
        dt.datetime(2026, 1, 31, 15, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 2, 28, 15, 0, tzinfo=dt.UTC),
    )


@override_settings(BILLING_TIME_ZONE="America/Los_Angeles")
def test_a_day_with_a_daylight_saving_change_is_23_hours_long():
    start, end = budgets.period_bounds("day", dt.datetime(2026, 3, 8, 20, 0, tzinfo=dt.UTC))
    assert end - start == dt.timedelta(hours=23)


@override_settings(BILLING_TIME_ZONE="Europe/Berlin")
def test_a_spent_budget_resets_lazily_when_its_period_ends(seeded, principal_factory, budget_factory):
    principal = principal_factory()
    this_day = budgets.period_bounds("day", timezone.now())[0]
    exhausted = budget_factory(scope="global", period="day", limit_micros=HOLD, spent_micros=HOLD)
    exhausted.period_start = this_day
    exhausted.save()
    with pytest.raises(BudgetExceeded):
        _reserve(principal)
    Budget.objects.filter(pk=exhausted.pk).update(period_start=this_day - dt.timedelta(days=1))
    _reserve(principal)  # yesterday's spend no longer counts
    exhausted.refresh_from_db()
    assert (exhausted.spent_micros, exhausted.reserved_micros, exhausted.period_start) == (0, HOLD, this_day)


@override_settings(BILLING_TIME_ZONE="Europe/Berlin")
def test_the_beat_rollover_zeroes_idle_budgets_with_the_same_rule(budget_factory):
    this_month = budgets.period_bounds("month", timezone.now())[0]
    idle = budget_factory(scope="global", spent_micros=500, period_start=this_month - dt.timedelta(days=3))
    current = budget_factory(scope="user", scope_id=1, spent_micros=700, period_start=this_month)
    assert budgets.roll_over_periods() == 1
    idle.refresh_from_db()
    current.refresh_from_db()
    assert (idle.spent_micros, idle.period_start, current.spent_micros) == (0, this_month, 700)
