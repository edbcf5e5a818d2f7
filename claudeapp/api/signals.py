"""Owner changes that must reach cached keys at once: deactivation, and group membership (principal group ids)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from claudeapp.api import keycache
from claudeapp.api.models import PartnerKey


def _owner_saved(sender: Any, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any) -> None:
    if created or (update_fields is not None and "is_active" not in update_fields):
        return  # a new user has no keys; `last_login` updates on every sign-in must not flush the cache
    transaction.on_commit(keycache.invalidate)


def _groups_changed(sender: Any, action: str, **kwargs: Any) -> None:
    if action in ("post_add", "post_remove", "post_clear"):
        transaction.on_commit(keycache.invalidate)


def _key_deleted(sender: Any, instance: PartnerKey, **kwargs: Any) -> None:
    prefix = instance.prefix
    keycache.invalidate(prefix)
    transaction.on_commit(lambda: keycache.invalidate(prefix))


User = get_user_model()
post_save.connect(_owner_saved, sender=User, dispatch_uid="api_owner_saved")
post_delete.connect(_key_deleted, sender=PartnerKey, dispatch_uid="api_key_deleted")
m2m_changed.connect(_groups_changed, sender=User.groups.through, dispatch_uid="api_owner_groups_changed")
