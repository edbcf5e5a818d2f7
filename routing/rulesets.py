"""Draft -> replay -> publish: the life of a rule set, plus rollback and the draft-vs-live diff."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from routing import modelmap
from routing.errors import RuleSetStateError
from routing.models import RoutingRule, RuleSet

_COPIED_FIELDS = [
    f.name for f in RoutingRule._meta.concrete_fields if f.name not in ("id", "rule_set", "created_at", "updated_at")
]
# Fields shown in the publish diff: what a rule matches and what it does.
_DIFF_FIELDS = [f for f in _COPIED_FIELDS if f not in ("name", "description")]
DRAFT_PREFIX = "Draft"


def draft() -> RuleSet | None:
    return RuleSet.objects.filter(status=RuleSet.Status.DRAFT).first()


def published() -> RuleSet | None:
    return RuleSet.objects.filter(status=RuleSet.Status.PUBLISHED).first()


def previous() -> RuleSet | None:
    """The set that was live before the published one: the one a rollback restores."""
    return (
        RuleSet.objects.filter(status=RuleSet.Status.ARCHIVED, published_at__isnull=False)
        .order_by("-published_at", "-pk")
        .first()
    )


def is_editable(rule_set: RuleSet | None) -> bool:
    """Only a draft's rules change: published and archived sets are history, edited by copying."""
    return rule_set is not None and rule_set.status == RuleSet.Status.DRAFT


@transaction.atomic
def create_draft(*, source_id: int | None = None, name: str = "") -> RuleSet:
    """A draft copied from `source_id` (default: the published set). One draft at a time."""
    if draft() is not None:
        raise RuleSetStateError(None, "A draft already exists: edit it, publish it or delete it first.")
    source = RuleSet.objects.filter(pk=source_id).first() if source_id else published()
    new = RuleSet.objects.create(
        name=name or (f"{DRAFT_PREFIX}: changes to {source.name}"[:100] if source else DRAFT_PREFIX),
        status=RuleSet.Status.DRAFT,
        note=f"Copied from {source.name} (#{source.pk}, {source.status})." if source else "",
    )
    if source is not None:
        RoutingRule.objects.bulk_create(
            RoutingRule(rule_set=new, **{f: getattr(rule, f) for f in _COPIED_FIELDS}) for rule in source.rules.all()
        )
    return new


@transaction.atomic
def publish(*, rule_set_id: int) -> RuleSet:
    """Make the draft live; the previously published set is archived (and can be copied into a new draft).

    A draft still carrying its automatic "Draft..." name is renamed to say what it now is."""
    target = RuleSet.objects.select_for_update().get(pk=rule_set_id)
    if target.status != RuleSet.Status.DRAFT:
        raise RuleSetStateError(rule_set_id, f"Only a draft can be published; this one is {target.status}.")
    RuleSet.objects.filter(status=RuleSet.Status.PUBLISHED).update(status=RuleSet.Status.ARCHIVED)
    now = timezone.now()
    target.status, target.published_at = RuleSet.Status.PUBLISHED, now
    if target.name.startswith(DRAFT_PREFIX):
        target.name = published_name(target.pk, now)
    target.save(update_fields=["status", "published_at", "name"])
    modelmap.changed()  # the update() above sends no signal
    return target


def published_name(pk: int, at: object) -> str:
    stamp = timezone.localtime(at).strftime("%Y-%m-%d %H:%M")  # type: ignore[arg-type]
    return f"Rules v{pk}, published {stamp}"


@transaction.atomic
def rollback() -> RuleSet:
    """Put the previously published set back live, as it was; the current one is archived."""
    current = RuleSet.objects.select_for_update().filter(status=RuleSet.Status.PUBLISHED).first()
    restore = previous()
    if restore is None:
        raise RuleSetStateError(None, "There is no earlier published rule set to roll back to.")
    RuleSet.objects.select_for_update().filter(pk=restore.pk).get()
    if current is not None:
        RuleSet.objects.filter(pk=current.pk).update(status=RuleSet.Status.ARCHIVED)
    restore.status, restore.published_at = RuleSet.Status.PUBLISHED, timezone.now()
    restore.save(update_fields=["status", "published_at"])
    modelmap.changed()
    return restore


@dataclass(frozen=True)
class RuleChange:
    """One line of the publish diff: a rule added, removed or changed (matched by name)."""

    name: str
    change: str  # added | removed | changed
    fields: tuple[tuple[str, str, str], ...] = ()  # (field, live value, draft value)


def diff(*, live_id: int | None, draft_id: int) -> list[RuleChange]:
    """What publishing `draft_id` changes compared with `live_id`, rule by rule (rules matched by name)."""
    before = _by_name(live_id)
    after = _by_name(draft_id)
    changes: list[RuleChange] = []
    for name, rule in after.items():
        old = before.get(name)
        if old is None:
            changes.append(RuleChange(name, "added", _describe(None, rule)))
            continue
        fields = tuple(
            (f, _show(getattr(old, f)), _show(getattr(rule, f)))
            for f in _DIFF_FIELDS
            if getattr(old, f) != getattr(rule, f)
        )
        if fields:
            changes.append(RuleChange(name, "changed", fields))
    changes += [
        RuleChange(name, "removed", _describe(rule, None)) for name, rule in before.items() if name not in after
    ]
    return changes


def _by_name(rule_set_id: int | None) -> dict[str, RoutingRule]:
    if rule_set_id is None:
        return {}
    return {
        r.name: r
        for r in RoutingRule.objects.filter(rule_set_id=rule_set_id).select_related("group").order_by("priority", "pk")
    }


def _describe(old: RoutingRule | None, new: RoutingRule | None) -> tuple[tuple[str, str, str], ...]:
    rule: RoutingRule = new if new is not None else old  # type: ignore[assignment]
    shown = [f for f in _DIFF_FIELDS if getattr(rule, f) not in ("", None, False)]
    return tuple((f, _show(getattr(old, f)) if old else "", _show(getattr(new, f)) if new else "") for f in shown)


def _show(value: object) -> str:
    if value in ("", None):
        return "(any)"
    return str(value)
