"""A partner's Message Batch on /anthropic: one upstream batch, its requests' holds and how each ended.

The partner sees our id (`msgbatch_…`), never upstream's; every request keeps the partner's own
`custom_id` and the budget hold taken for it at submission, until its result is billed (succeeded)
or its hold given back (errored, canceled, expired). Imported by claudeapp/api/models.py.
"""

from __future__ import annotations

import secrets
import string

from django.conf import settings
from django.db import models

_ALPHABET = string.ascii_letters + string.digits


def new_public_id() -> str:
    return "msgbatch_gw" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


class AnthropicBatch(models.Model):
    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        CANCELING = "canceling", "Canceling"
        ENDED = "ended", "Ended"

    public_id = models.CharField(max_length=40, unique=True, default=new_public_id, editable=False)
    principal_kind = models.CharField(max_length=20)
    principal_id = models.BigIntegerField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    upstream_id = models.CharField(max_length=100, blank=True, db_index=True)
    processing_status = models.CharField(max_length=20, choices=Status.choices, default=Status.IN_PROGRESS)
    request_count = models.PositiveIntegerField()
    processing_count = models.PositiveIntegerField(default=0)
    succeeded_count = models.PositiveIntegerField(default=0)
    errored_count = models.PositiveIntegerField(default=0)
    canceled_count = models.PositiveIntegerField(default=0)
    expired_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    cancel_initiated_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    polled_at = models.DateTimeField(null=True, blank=True)
    # Every result billed (succeeded) or its hold given back: nothing is left to do upstream.
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["principal_kind", "principal_id", "-id"], name="anthbatch_principal_idx"),
            models.Index(fields=["settled_at", "processing_status"], name="anthbatch_open_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.processing_status})"


class AnthropicBatchRequest(models.Model):
    batch = models.ForeignKey(AnthropicBatch, on_delete=models.CASCADE, related_name="requests")
    custom_id = models.CharField(max_length=64)
    model_id = models.CharField(max_length=100)
    reservation_id = models.BigIntegerField(null=True, blank=True)  # billing.Reservation, while held
    result_type = models.CharField(max_length=20, blank=True)  # succeeded | errored | canceled | expired | missing
    cost_micros = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["batch", "custom_id"], name="anthbatchrequest_custom_id_uniq")]

    def __str__(self) -> str:
        return f"{self.custom_id} in {self.batch_id}"
