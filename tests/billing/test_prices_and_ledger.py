from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.test import override_settings

from billing import ledger, prices
from billing.costs import Usage
from billing.errors import PriceMissing
from billing.models import DailyRollup, LedgerEntry, PriceVersion


def test_seed_is_idempotent_and_keeps_operator_edits(seeded):
    from billing import seed

    price = PriceVersion.objects.get(model__model_id="claude-opus-5-5")
    price.input_micros = 3_000_000
    price.save()
    seed.run(stdout=StringIO())
    assert PriceVersion.objects.count() == len(seed.PRICES)
    price.refresh_from_db()
    assert price.input_micros == 3_000_000


def test_sonnet_5_5_has_two_versions_split_at_the_read_cut(seeded):
    versions = PriceVersion.objects.filter(model__model_id="claude-sonnet-5-5").order_by("effective_from")
    assert [v.cache_read_micros for v in versions] == [200_000, 100_000]
    assert prices.current_price(model_id="claude-sonnet-5-5").cache_read_micros == 100_000


def test_a_model_without_a_price_is_refused_not_billed_zero(seeded):
    with pytest.raises(PriceMissing) as caught:
        prices.current_price(model_id="claude-unknown-9")
    assert caught.value.model_id == "claude-unknown-9"
    with pytest.raises(PriceMissing):
        prices.current_price(model_id="claude-opus-5-5", at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))


@pytest.mark.django_db(transaction=True)
def test_an_admin_price_edit_reaches_the_cached_price_after_commit(price_factory):
    version = price_factory(model_id="cache-probe", input_micros=1)
    assert prices.current_price(model_id="cache-probe").input_micros == 1
    PriceVersion.objects.filter(pk=version.pk).update(input_micros=2)  # no signal: cache still serves 1
    assert prices.current_price(model_id="cache-probe").input_micros == 1
    version.input_micros = 3
    with override_settings(BILLING_CACHE_SECONDS=0):
        version.save()  # post_save bumps the Redis version on commit; every process reloads
        assert prices.current_price(model_id="cache-probe").input_micros == 3


PLAIN = Usage(input_tokens=1000, output_tokens=500)


def _record(principal, price, event_key="evt-1", usage=PLAIN, **extra):
    return ledger.record(
        principal=principal,
        kind="message",
        subject="msg-uuid-1",
        model_id=price.model.model_id,
        usage=usage,
        price=price,
        event_key=event_key,
        upstream_request_id="req_1",
        upstream_message_id="msg_1",
        **extra,
    )


def test_recording_the_same_event_twice_bills_once(seeded, principal_factory):
    principal = principal_factory()
    price = prices.current_price(model_id="claude-opus-5-5")
    first = _record(principal, price)
    again = _record(principal, price, usage=Usage(input_tokens=9, output_tokens=9))
    assert again.pk == first.pk and again.cost_micros == first.cost_micros == 14_000
    assert LedgerEntry.objects.count() == 1
    rollup = DailyRollup.objects.get()
    assert (rollup.requests, rollup.cost_micros, rollup.input_tokens, rollup.output_tokens) == (1, 14_000, 1000, 500)


def test_the_daily_rollup_sums_entries_per_principal_and_model(seeded, principal_factory):
    alice, bob = principal_factory(), principal_factory(kind="partner_key")
    opus = prices.current_price(model_id="claude-opus-5-5")
    _record(alice, opus, "a1")
    _record(alice, opus, "a2")
    _record(alice, opus, "a3", batch=True)
    _record(bob, opus, "b1")
    rollups = {(r.principal_kind, r.principal_id): r for r in DailyRollup.objects.all()}
    assert rollups[("user", alice.id)].requests == 3
    assert rollups[("user", alice.id)].cost_micros == 14_000 * 2 + 7_000
    assert rollups[("partner_key", bob.id)].cost_micros == 14_000
    assert LedgerEntry.objects.get(event_key="b1").user_id == bob.user_id


@override_settings(BILLING_TIME_ZONE="America/Los_Angeles")
def test_the_rollup_day_is_the_billing_time_zone_day():
    late_evening_in_la = dt.datetime(2026, 3, 2, 5, 30, tzinfo=dt.UTC)  # 21:30 on March 1st in LA
    assert ledger.billing_day(late_evening_in_la) == dt.date(2026, 3, 1)
