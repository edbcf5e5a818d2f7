"""Money as operators read it: one rule for every headline, row and message in the console.

Amounts are integer micro-dollars underneath; shown as $12.34 from a dollar up, $0.0144 from a cent
up, and to the micro-dollar under a cent ($0.002134), so a small spend never reads as $0.00.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MICROS_PER_DOLLAR = 1_000_000


def usd(micros: int | None) -> str:
    if micros is None:
        return "n/a"
    micros = int(micros)
    sign, size = ("-" if micros < 0 else ""), abs(micros)
    if size == 0:
        return "$0.00"
    if size >= MICROS_PER_DOLLAR:
        text = f"{size / MICROS_PER_DOLLAR:,.2f}"
    elif size >= 10_000:
        text = f"{size / MICROS_PER_DOLLAR:.4f}"
    else:
        text = f"{size / MICROS_PER_DOLLAR:.6f}"
    return f"{sign}${text}"


def to_micros(dollars: Decimal | str | float) -> int:
    """Dollars (as typed: '0.01', '12.5') -> micro-dollars, exactly; more than six decimals is refused."""
    try:
        value = Decimal(str(dollars))
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {dollars!r}") from exc
    micros = value * MICROS_PER_DOLLAR
    if micros != micros.to_integral_value():
        raise ValueError("at most six decimals (one micro-dollar)")
    return int(micros)


def to_dollars(micros: int) -> Decimal:
    return (Decimal(micros) / MICROS_PER_DOLLAR).normalize() if micros else Decimal("0")
