"""Reads on jobs."""

from __future__ import annotations

from django.db.models import QuerySet

from claudeapp.accounts.principals import Principal
from claudeapp.jobs.models import Job


def for_principal(*, principal: Principal, status: str | None = None) -> QuerySet[Job]:
    """The principal's jobs (with their batch, which `eta` reads), optionally of one status; the API
    pages and date-filters this queryset."""
    qs: QuerySet[Job] = Job.objects.filter(principal_kind=principal.kind, principal_id=principal.id)
    if status:
        qs = qs.filter(status=status)
    return qs.select_related("batch")


def list_for_principal(
    *, principal: Principal, status: str | None = None, before: Job | None = None, limit: int = 20
) -> tuple[list[Job], bool]:
    """A page of the principal's jobs, newest first, and whether more follow (the chat's job list)."""
    qs = for_principal(principal=principal, status=status)
    if before is not None:
        qs = qs.filter(created_at__lt=before.created_at)
    rows = list(qs.order_by("-created_at")[: limit + 1])
    return rows[:limit], len(rows) > limit
