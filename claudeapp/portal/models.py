"""What an operator lets a key owner do in the partner portal (the portal itself owns no other data)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from claudeapp.api.models import Scope


def _all_scopes() -> list[str]:
    return list(Scope.values)


class KeyAllowance(models.Model):
    """The operator's caps on the keys a user may create for themselves in the portal: which scopes and
    how many live keys. Without one, the user can see, rotate and revoke their keys but not create any."""

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="key_allowance")
    allowed_scopes = ArrayField(models.CharField(max_length=20, choices=Scope.choices), default=_all_scopes)
    max_keys = models.PositiveIntegerField(default=5, help_text="Live (not revoked) keys at most.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "portal key allowance"

    def __str__(self) -> str:
        return f"{self.owner}: up to {self.max_keys} keys, {', '.join(self.allowed_scopes)}"
