from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def dollars(micros: int | None) -> str:
    """Micro-dollars as dollars: $12.34 for large sums, six decimals for small ones."""
    micros = micros or 0
    return f"${micros / 1_000_000:,.2f}" if abs(micros) >= 1_000_000 else f"${micros / 1_000_000:.6f}"
