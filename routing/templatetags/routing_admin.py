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


@register.simple_tag
def circuit(status: object) -> dict[str, object]:
    """A breaker status as operators read it: when it opened, how long the cooldown still runs, and the
    failures that count (an open circuit was opened by `failure_threshold` of them; its counter restarts)."""
    import datetime as dt
    import time

    from claudeapp.claude import breaker

    policy = breaker.policy_for(status.model)  # type: ignore[attr-defined]
    opened_at = status.opened_at  # type: ignore[attr-defined]
    state = str(status.state)  # type: ignore[attr-defined]
    left = max(0.0, policy.cooldown_seconds - (time.time() - opened_at)) if opened_at else 0.0
    if state == "closed":
        failures = f"{status.failures} of {policy.failure_threshold} in the last {policy.window_seconds:.0f} s"  # type: ignore[attr-defined]
    else:
        failures = f"{policy.failure_threshold} within {policy.window_seconds:.0f} s opened it"
    return {
        "opened": dt.datetime.fromtimestamp(opened_at, tz=dt.UTC) if opened_at else None,
        "cooldown_left": round(left),
        "cooldown": round(policy.cooldown_seconds),
        "failures": failures,
    }
