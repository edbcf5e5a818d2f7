"""Hand-computed costs for every seeded model (µ$ = tokens x $/MTok), checked against compute_cost."""

from __future__ import annotations

import datetime as dt

import pytest
from anthropic.types import CacheCreation
from anthropic.types import Usage as SdkUsage

from billing.costs import Usage, compute_cost, worst_case_micros
from billing.prices import current_price

AFTER_READ_CUT = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)

PLAIN = Usage(input_tokens=1000, output_tokens=500)
CACHED = Usage(
    input_tokens=200, cache_write_5m_tokens=1000, cache_write_1h_tokens=2000, cache_read_tokens=5000, output_tokens=300
)
# A stream cut after 37 output tokens: message_start's input plus the last cumulative message_delta.
CUT = Usage(input_tokens=1000, output_tokens=37)

# model: (plain, cached incl. both write lifetimes and reads, the cached call in a batch, stream cut)
# e.g. Opus 5.5 cached: 200x4 + 1000x5 + 2000x8 + 5000x0.20 + 300x20 = 800+5000+16000+1000+6000 = 28800
EXPECTED = {
    "claude-opus-5-5": (14000, 28800, 14400, 4740),
    "claude-sonnet-5-5": (7000, 14400, 7200, 2370),  # cache read 0.10 after 2026-10-07
    "claude-haiku-5-5": (350, 745, 373, 119),  # 372.5 and 118.5 round half up
    "claude-opus-5": (17500, 37250, 18625, 5925),
    "claude-sonnet-5": (7000, 14900, 7450, 2370),
    "claude-opus-4-8": (17500, 37250, 18625, 5925),
    "claude-opus-4-7": (17500, 37250, 18625, 5925),
    "claude-opus-4-6": (17500, 37250, 18625, 5925),
    "claude-opus-4-5": (17500, 37250, 18625, 5925),
    "claude-sonnet-4-6": (10500, 22350, 11175, 3555),
    "claude-sonnet-4-5": (10500, 22350, 11175, 3555),
    "claude-haiku-4-5": (3500, 7450, 3725, 1185),
    "claude-fable-5-2": (28000, 56600, 28300, 9480),
    "claude-mythos-5-2": (28000, 56600, 28300, 9480),
}


@pytest.mark.parametrize("model_id", sorted(EXPECTED))
def test_every_seeded_model_costs_what_the_price_table_says(seeded, model_id):
    price = current_price(model_id=model_id, at=AFTER_READ_CUT)
    plain, cached, batch_cached, cut = EXPECTED[model_id]
    assert compute_cost(price=price, usage=PLAIN).total_micros == plain
    assert compute_cost(price=price, usage=CACHED).total_micros == cached
    assert compute_cost(price=price, usage=CACHED, batch=True).total_micros == batch_cached
    assert compute_cost(price=price, usage=CUT).total_micros == cut


def test_every_seeded_model_has_a_price(seeded):
    from routing.models import Model

    assert set(Model.objects.values_list("model_id", flat=True)) == set(EXPECTED)


def test_cost_breaks_down_by_token_class(seeded):
    cost = compute_cost(price=current_price(model_id="claude-opus-5-5"), usage=CACHED)
    assert (cost.input_micros, cost.cache_write_5m_micros, cost.cache_write_1h_micros) == (800, 5000, 16000)
    assert (cost.cache_read_micros, cost.output_micros, cost.banded) == (1000, 6000, False)


def test_sonnet_5_5_cache_reads_cost_half_after_the_october_cut(seeded):
    reads = Usage(cache_read_tokens=10_000)
    before = current_price(model_id="claude-sonnet-5-5", at=dt.datetime(2026, 10, 6, 23, 59, tzinfo=dt.UTC))
    after = current_price(model_id="claude-sonnet-5-5", at=dt.datetime(2026, 10, 7, tzinfo=dt.UTC))
    assert compute_cost(price=before, usage=reads).total_micros == 2000  # 10k x 0.20
    assert compute_cost(price=after, usage=reads).total_micros == 1000  # 10k x 0.10


def test_haiku_5_5_prices_the_whole_request_at_the_band_above_100k_prompt_tokens(seeded):
    price = current_price(model_id="claude-haiku-5-5")
    at_threshold = Usage(input_tokens=100_000, output_tokens=1000)
    above = Usage(input_tokens=150_000, output_tokens=1000)
    via_cache = Usage(input_tokens=50_000, cache_read_tokens=60_000, output_tokens=100)
    assert compute_cost(price=price, usage=at_threshold).total_micros == 10_500  # 100k x 0.10 + 1k x 0.50
    assert compute_cost(price=price, usage=above).total_micros == 77_500  # 150k x 0.50 + 1k x 2.50
    banded = compute_cost(price=price, usage=via_cache)  # 50k x 0.50 + 60k x 0.05 + 100 x 2.50
    assert (banded.total_micros, banded.banded) == (28_250, True)
    assert compute_cost(price=price, usage=above, batch=True).total_micros == 38_750


def test_rounding_is_half_up_once_on_the_exact_total(seeded):
    price = current_price(model_id="claude-haiku-5-5")  # cache read: 0.01 µ$ per token
    assert compute_cost(price=price, usage=Usage(cache_read_tokens=49)).total_micros == 0
    assert compute_cost(price=price, usage=Usage(cache_read_tokens=50)).total_micros == 1
    # 3 x 0.10 + 1 x 0.50 = 0.8: per-class rounding would say 0 + 1 = 1 too, but 0.3 + 0.3 + ... must not drift
    many_classes = Usage(input_tokens=3, cache_read_tokens=30, cache_write_5m_tokens=2)  # 0.3 + 0.3 + 0.25
    cost = compute_cost(price=price, usage=many_classes)
    assert cost.total_micros == 1 and cost.input_micros + cost.cache_read_micros + cost.cache_write_5m_micros == 0


def test_an_explicit_zero_price_bills_zero(price_factory):
    free = price_factory(input_micros=0, output_micros=0)
    assert compute_cost(price=free, usage=PLAIN).total_micros == 0


def test_worst_case_takes_the_dearest_input_rate_and_all_of_max_tokens(seeded):
    price = current_price(model_id="claude-opus-5-5")
    # 1000 x 8 (1h write is dearer than input at 4) + 500 x 20
    assert worst_case_micros(price=price, input_tokens=1000, max_tokens=500) == 18_000
    assert worst_case_micros(price=price, input_tokens=1000, max_tokens=500, batch=True) == 9_000
    haiku = current_price(model_id="claude-haiku-5-5")
    assert worst_case_micros(price=haiku, input_tokens=150_000, max_tokens=1000) == 152_500  # band: 150k x 1 + 1k x 2.5
    assert worst_case_micros(price=haiku, input_tokens=1, max_tokens=0) == 1  # 0.2 µ$ rounds up, never short


def test_usage_reads_the_sdk_object_with_the_cache_lifetime_split():
    sdk = SdkUsage(
        input_tokens=10,
        output_tokens=20,
        cache_creation_input_tokens=300,
        cache_read_input_tokens=40,
        cache_creation=CacheCreation(ephemeral_5m_input_tokens=100, ephemeral_1h_input_tokens=200),
    )
    assert Usage.from_anthropic(sdk) == Usage(10, 20, 100, 200, 40)


def test_usage_without_the_split_counts_cache_creation_as_five_minute_writes():
    raw = {"input_tokens": 5, "output_tokens": 7, "cache_creation_input_tokens": 30, "cache_read_input_tokens": None}
    assert Usage.from_anthropic(raw) == Usage(input_tokens=5, output_tokens=7, cache_write_5m_tokens=30)
