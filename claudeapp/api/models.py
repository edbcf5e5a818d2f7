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
    # Rotation keeps the row (the same principal: budgets, limits, conversations, jobs and usage stay
    # with the key) and the prefix; the old secret keeps working until `previous_valid_until`.
    previous_secret_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    previous_valid_until = models.DateTimeField(null=True, blank=True, editable=False)
    rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    rotation_grace_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="How long the old key keeps working after a rotation. Empty: PARTNER_KEY_ROTATION_GRACE_SECONDS.",
    )

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


# The /anthropic Message Batches (claudeapp/api/batch_models.py), registered with this app.
from claudeapp.api.batch_models import AnthropicBatch, AnthropicBatchRequest  # noqa: E402

__all__ = ["AnthropicBatch", "AnthropicBatchRequest", "PartnerKey", "Scope"]
