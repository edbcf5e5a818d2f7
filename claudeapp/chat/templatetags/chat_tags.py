from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from claudeapp.chat import markdown

register = template.Library()


@register.filter
def render_markdown(text: str) -> SafeString:
    return mark_safe(markdown.render(text or ""))  # noqa: S308  (nh3 sanitised it)


@register.filter
def usd(micros: int | None) -> str:
    """Micro-dollars as a readable amount: $0.0123, or $12.34 when large."""
    value = (micros or 0) / 1_000_000
    return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"
