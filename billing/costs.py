"""Cost of one upstream call: pure integer arithmetic, no I/O.

Prices are micro-dollars per million tokens, so a token class costs
tokens x rate x (100 - batch discount) / (1_000_000 x 100) micro-dollars, an exact fraction.
Each class and the total are rounded half up from the exact fractions; the total is the sum
of the exact fractions rounded once, so it never drifts with the number of classes. It is the
amount billed; the per-class figures are for display and may differ from it by under a micro
per class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from billing.models import PRICE_FIELDS, PriceVersion

_PER_MILLION = 1_000_000


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        """What Anthropic's long-context bands compare to the threshold: every input token, cached or not."""
        return self.input_tokens + self.cache_write_5m_tokens + self.cache_write_1h_tokens + self.cache_read_tokens

    def by_class(self) -> dict[str, int]:
        return {
            "input": self.input_tokens,
            "output": self.output_tokens,
            "cache_write_5m": self.cache_write_5m_tokens,
            "cache_write_1h": self.cache_write_1h_tokens,
            "cache_read": self.cache_read_tokens,
        }

    @classmethod
    def from_anthropic(cls, usage: Any) -> Usage:
        """Read the SDK's Usage (or its dict form, e.g. from a stream's message_start/message_delta).

        Older responses carry only cache_creation_input_tokens: that is treated as 5-minute writes,
        the default lifetime. Tokens in the total beyond the 5m/1h split are counted as 5m as well.
        """
        created = _int(_field(usage, "cache_creation_input_tokens"))
        split = _field(usage, "cache_creation")
        five = _int(_field(split, "ephemeral_5m_input_tokens")) if split is not None else created
        hour = _int(_field(split, "ephemeral_1h_input_tokens")) if split is not None else 0
        return cls(
            input_tokens=_int(_field(usage, "input_tokens")),
            output_tokens=_int(_field(usage, "output_tokens")),
            cache_write_5m_tokens=five + max(0, created - five - hour),
            cache_write_1h_tokens=hour,
            cache_read_tokens=_int(_field(usage, "cache_read_input_tokens")),
        )


def _field(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _int(value: Any) -> int:
    return int(value or 0)


@dataclass(frozen=True)
class Cost:
    input_micros: int
    output_micros: int
    cache_write_5m_micros: int
    cache_write_1h_micros: int
    cache_read_micros: int
    total_micros: int
    banded: bool = False


def _round_half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def _keep_percent(price: PriceVersion, batch: bool) -> int:
    return 100 - price.batch_discount_percent if batch else 100


def is_banded(price: PriceVersion, prompt_tokens: int) -> bool:
    return price.band_threshold_tokens is not None and prompt_tokens > price.band_threshold_tokens


def compute_cost(*, price: PriceVersion, usage: Usage, batch: bool = False) -> Cost:
    banded = is_banded(price, usage.prompt_tokens)
    rates = price.rates(banded=banded)
    keep = _keep_percent(price, batch)
    tokens = usage.by_class()
    exact = {cls: tokens[cls] * rates[cls] * keep for cls in PRICE_FIELDS}
    denominator = _PER_MILLION * 100
    return Cost(
        **{f"{cls}_micros": _round_half_up(exact[cls], denominator) for cls in PRICE_FIELDS},
        total_micros=_round_half_up(sum(exact.values()), denominator),
        banded=banded,
    )


def worst_case_micros(*, price: PriceVersion, input_tokens: int, max_tokens: int, batch: bool = False) -> int:
    """The most a call can cost: every input token at the dearest input rate (a 1h cache write costs
    more than plain input) and all of max_tokens produced, rounded up so the hold is never short."""
    rates = price.rates(banded=is_banded(price, input_tokens))
    input_rate = max(rates["input"], rates["cache_write_5m"], rates["cache_write_1h"])
    exact = (input_tokens * input_rate + max_tokens * rates["output"]) * _keep_percent(price, batch)
    return -(-exact // (_PER_MILLION * 100))
