"""Console template helpers: money as operators read it, and a principal's spend, budgets and limits."""

from __future__ import annotations

from django import template

from billing import console, money

register = template.Library()


@register.filter
def usd(micros: int | None) -> str:
    return money.usd(micros)


@register.simple_tag
def principal_overview(kind: str, pk: int) -> console.Overview:
    return console.principal_overview(kind=kind, pk=pk)
