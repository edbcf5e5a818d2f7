from __future__ import annotations

from django import template

from billing import money

register = template.Library()


@register.filter
def dollars(micros: int | None) -> str:
    """Micro-dollars as billing.money shows them everywhere in the console, or 'n/a' when unknown."""
    if micros is None or micros == "":
        return "n/a"
    return money.usd(int(micros))


@register.filter
def cost_change(report: object) -> str:
    """'+$0.0123 (+12%)' from the live set's estimated cost to the draft's, or 'n/a'."""
    before = report.published.total_cost_micros  # type: ignore[attr-defined]
    after = report.draft.total_cost_micros  # type: ignore[attr-defined]
    if before is None or after is None:
        return "n/a"
    delta = after - before
    sign = "+" if delta >= 0 else "-"
    share = f" ({sign}{abs(delta) * 100 / before:.0f}%)" if before else ""
    return f"{sign}{money.usd(abs(delta))}{share}"
