"""Any edit of the model map or the rules makes every process reload its snapshot (see modelmap.py)."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save

from routing import modelmap
from routing.models import Model, ModelAlias, RoutingRule, RuleSet


def _changed(**kwargs: object) -> None:
    modelmap.changed()


def connect() -> None:
    for sender in (Model, ModelAlias, RuleSet, RoutingRule):
        post_save.connect(_changed, sender=sender, dispatch_uid=f"routing-map-{sender.__name__}")
        post_delete.connect(_changed, sender=sender, dispatch_uid=f"routing-map-del-{sender.__name__}")
