"""The portal's writes: a key owner's own keys and webhook secrets, through the API package's services
(the same ones the admin and the self-service API use), within the operator's caps."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.http import Http404
from rest_framework import exceptions

from claudeapp.api import budget_alerts, keys
from claudeapp.api.errors import first_error
from claudeapp.api.models import PartnerKey
from claudeapp.jobs import webhooks
from claudeapp.jobs.errors import InvalidWebhookUrl
from claudeapp.jobs.models import WebhookDelivery
from claudeapp.portal.errors import PortalRefused
from claudeapp.portal.models import KeyAllowance


def own_key(*, owner: Any, key_id: int) -> PartnerKey:
    """One of the owner's keys; anyone else's is a 404, never a 403."""
    key = PartnerKey.objects.filter(pk=key_id, owner=owner).first()
    if key is None:
        raise Http404("No such key.")
    return key


def create_key(*, owner: Any, name: str, scopes: Iterable[str]) -> tuple[PartnerKey, str]:
    """A new key for the owner, with scopes inside the operator's allowance and under its key count."""
    wanted = list(dict.fromkeys(scopes))
    if not name.strip():
        raise PortalRefused("Give the key a name.", field="name")
    if not wanted:
        raise PortalRefused("Choose at least one scope.", field="scopes")
    with transaction.atomic():
        allowance = KeyAllowance.objects.select_for_update().filter(owner=owner).first()
        if allowance is None:
            raise PortalRefused("Your operator has not allowed you to create keys here.")
        outside = [scope for scope in wanted if scope not in allowance.allowed_scopes]
        if outside:
            raise PortalRefused(f"Not allowed for your keys: {', '.join(outside)}.", field="scopes")
        if PartnerKey.objects.filter(owner=owner, revoked_at__isnull=True).count() >= allowance.max_keys:
            raise PortalRefused(f"You already have {allowance.max_keys} live keys, your limit.")
        return keys.create_key(owner=owner, name=name.strip()[:100], scopes=wanted)


def rotate_key(*, owner: Any, key_id: int) -> tuple[PartnerKey, str]:
    return keys.rotate_key(key=own_key(owner=owner, key_id=key_id))


def revoke_key(*, owner: Any, key_id: int) -> int:
    """Revoke; returns how many of its queued jobs were canceled."""
    return keys.revoke_key(key=own_key(owner=owner, key_id=key_id))


def rotate_webhook_secret(*, owner: Any, key_id: int) -> webhooks.SecretInfo:
    return keys.rotate_webhook_secret(key=own_key(owner=owner, key_id=key_id))


def send_test_event(*, owner: Any, key_id: int, url: str) -> WebhookDelivery:
    """A signed `ping` to `url` (same SSRF guard and signature as job webhooks)."""
    key = own_key(owner=owner, key_id=key_id)
    try:
        return webhooks.send_test_event(principal_kind=keys.PRINCIPAL_KIND, principal_id=key.pk, url=url)
    except InvalidWebhookUrl as exc:
        raise PortalRefused(str(exc), field="url") from exc


def set_budget_alerts(*, owner: Any, key_id: int, budget_id: int, thresholds: str, url: str) -> None:
    """The key's own alerts on a budget covering it (as PUT /api/v1/limits/budgets/{id}/alerts):
    `thresholds` as typed, e.g. "50, 80"."""
    principal = keys.principal_for(own_key(owner=owner, key_id=key_id))
    wanted = [part.strip() for part in thresholds.split(",") if part.strip()]
    data = {"thresholds": [int(part) if part.isdigit() else part for part in wanted], "webhook_url": url.strip()}
    try:
        budget_alerts.set_alerts(principal=principal, budget_id=budget_id, data=data)
    except exceptions.ValidationError as exc:
        field, message = first_error(exc.detail)
        raise PortalRefused(message, field=field) from exc
    except exceptions.NotFound as exc:
        raise Http404(str(exc.detail)) from exc


def clear_budget_alerts(*, owner: Any, key_id: int, budget_id: int) -> None:
    principal = keys.principal_for(own_key(owner=owner, key_id=key_id))
    try:
        budget_alerts.clear_alerts(principal=principal, budget_id=budget_id)
    except exceptions.NotFound as exc:
        raise Http404(str(exc.detail)) from exc
