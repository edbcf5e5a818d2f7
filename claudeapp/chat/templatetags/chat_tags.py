from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from billing import money
from claudeapp.chat import markdown

register = template.Library()


@register.filter
def render_markdown(text: str) -> SafeString:
    return mark_safe(markdown.render(text or ""))  # noqa: S308  (nh3 sanitised it)


@register.filter
def usd(micros: int | None) -> str:
    """Micro-dollars as the console shows them (billing.money: one rule everywhere); none is $0.00."""
    return money.usd(micros or 0)
