"""Draft -> replay -> publish: the life of a rule set."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from routing import modelmap
from routing.errors import RuleSetStateError
from routing.models import RoutingRule, RuleSet

_COPIED_FIELDS = [
    f.name for f in RoutingRule._meta.concrete_fields if f.name not in ("id", "rule_set", "created_at", "updated_at")
]


def draft() -> RuleSet | None:
    return RuleSet.objects.filter(status=RuleSet.Status.DRAFT).first()


def published() -> RuleSet | None:
    return RuleSet.objects.filter(status=RuleSet.Status.PUBLISHED).first()


@transaction.atomic
def create_draft(*, source_id: int | None = None, name: str = "") -> RuleSet:
    """A draft copied from `source_id` (default: the published set). One draft at a time."""
    if draft() is not None:
        raise RuleSetStateError(None, "A draft already exists: edit it, publish it or delete it first.")
    source = RuleSet.objects.filter(pk=source_id).first() if source_id else published()
    new = RuleSet.objects.create(
        name=name or (f"Draft from {source.name}" if source else "Draft"), status=RuleSet.Status.DRAFT
    )
    if source is not None:
        RoutingRule.objects.bulk_create(
            RoutingRule(rule_set=new, **{f: getattr(rule, f) for f in _COPIED_FIELDS}) for rule in source.rules.all()
        )
    return new


@transaction.atomic
def publish(*, rule_set_id: int) -> RuleSet:
    """Make the draft live; the previously published set is archived (and can be copied into a new draft)."""
    target = RuleSet.objects.select_for_update().get(pk=rule_set_id)
    if target.status != RuleSet.Status.DRAFT:
        raise RuleSetStateError(rule_set_id, f"Only a draft can be published; this one is {target.status}.")
    RuleSet.objects.filter(status=RuleSet.Status.PUBLISHED).update(status=RuleSet.Status.ARCHIVED)
    target.status, target.published_at = RuleSet.Status.PUBLISHED, timezone.now()
    target.save(update_fields=["status", "published_at"])
    modelmap.changed()  # the update() above sends no signal
    return target
