from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models


class Scope(models.TextChoices):
    MESSAGES = "messages", "Messages"
    CONVERSATIONS = "conversations", "Conversations"
    JOBS = "jobs", "Jobs"
    USAGE = "usage", "Usage"
    MODELS = "models", "Models"


class PartnerKey(models.Model):
    """A partner's API key. Only an HMAC of the key is stored; the raw key is shown once at creation.

    `prefix` is the public half of the key (`cgw_<prefix>_...`) and the lookup id, so a
    request finds its row by an indexed equality match and never by the secret.
    """

    name = models.CharField(max_length=100)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="partner_keys")
    scopes = ArrayField(models.CharField(max_length=20, choices=Scope.choices), default=list, blank=True)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False, help_text="HMAC-SHA256 of the whole key.")
    last4 = models.CharField(max_length=4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(prefix__regex=r"^[0-9A-Za-z]+$"), name="partnerkey_prefix_base62"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.masked})"

    @property
    def masked(self) -> str:
        """What operators and logs may see: the public prefix and the last four characters."""
        return f"cgw_{self.prefix}_…{self.last4}"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
