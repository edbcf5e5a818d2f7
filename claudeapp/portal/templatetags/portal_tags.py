from __future__ import annotations

from django import template

from billing import money

register = template.Library()


@register.filter
def dollars(micros: int | None) -> str:
    """Micro-dollars as the console and the chat show them (billing.money); none is $0.00."""
    return money.usd(micros or 0)
