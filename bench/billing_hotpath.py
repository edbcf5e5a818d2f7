"""Cost of billing's hot path per request, as multiples of one Postgres / Redis round trip.

Run against a migrated and seeded database (it adds and then removes its own budget, policy and
ledger rows):  .venv/bin/python bench/billing_hotpath.py [iterations]
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "claudeapp.settings")


def _per_call(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - start) / n * 1000


def main() -> None:
    import django

    django.setup()
    from django.db import connection

    from billing import budgets, limits, redisconn
    from billing.costs import Usage
    from billing.models import Budget, DailyRollup, LedgerEntry, RateLimitPolicy
    from claudeapp.accounts.models import User
    from claudeapp.accounts.principals import Principal

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    tag = uuid.uuid4().hex[:8]
    user, _ = User.objects.get_or_create(username="billing-bench")
    principal = Principal(kind="partner_key", id=900_000_001, user_id=user.pk)
    budget = Budget.objects.create(scope="partner_key", scope_id=principal.id, limit_micros=10**15)
    policy = RateLimitPolicy.objects.create(
        scope="partner_key", scope_id=principal.id, requests_per_minute=10**6, input_tokens_per_minute=10**9,
        output_tokens_per_minute=10**9, concurrent_requests=10**4,
    )  # fmt: skip
    limits._policies.clear()
    usage = Usage(input_tokens=1000, output_tokens=500)
    model = "claude-sonnet-5-5"
    try:
        with connection.cursor() as cursor:
            pg = _per_call(lambda i: cursor.execute("SELECT 1"), n)
        rd = _per_call(lambda i: redisconn.client().ping(), n)

        def money(i: int) -> None:
            r = budgets.reserve(principal=principal, model_id=model, input_tokens=1000, max_tokens=500)
            budgets.settle(reservation=r, usage=usage, event_key=f"bench-{tag}-{i}", kind="message", subject="bench")

        def rate(i: int) -> None:
            ticket = limits.acquire(principal=principal, model_id=model, input_tokens=1000, max_tokens=500)
            limits.finish(ticket=ticket, usage=usage)

        m, r = _per_call(money, n), _per_call(rate, n)
    finally:
        LedgerEntry.objects.filter(event_key__startswith=f"bench-{tag}-").delete()
        DailyRollup.objects.filter(principal_kind="partner_key", principal_id=principal.id).delete()
        budget.delete()
        policy.delete()
    print(f"postgres round trip      {pg:7.3f} ms")
    print(f"redis round trip         {rd:7.3f} ms")
    print(f"reserve + settle         {m:7.3f} ms  = {m / pg:5.1f} x postgres round trip")
    print(f"acquire + finish         {r:7.3f} ms  = {r / rd:5.1f} x redis round trip")


if __name__ == "__main__":
    main()
