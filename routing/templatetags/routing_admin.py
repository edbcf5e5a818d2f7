from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def dollars(micros: int | None) -> str:
    """Micro-dollars as '$1.234567', or 'n/a' when unknown."""
    if micros is None or micros == "":
        return "n/a"
    return f"${int(micros) / 1_000_000:,.4f}"
