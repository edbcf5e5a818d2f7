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
    """Micro-dollars as a readable amount: $12.34, $0.0123, or $0.000042 for a short Haiku answer."""
    micros = micros or 0
    if micros >= 1_000_000:
        return f"${micros / 1_000_000:,.2f}"
    if micros >= 100:
        return f"${micros / 1_000_000:.4f}"
    return f"${micros / 1_000_000:.6f}"  # exact to the micro-dollar, so a cheap answer never looks free
