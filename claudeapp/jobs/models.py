"""Job: the durable record of one asynchronous Claude call. Redis only carries its id.

The row is the source of truth and the dead-letter queue: a lost broker message or a
killed worker is repaired by the sweeper from what the row says.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Job(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        DEAD = "dead", "Dead"
        CANCELED = "canceled", "Canceled"

    class Mode(models.TextChoices):
        QUEUE = "queue", "Queue"
        BATCH = "batch", "Batch"

    class Queue(models.TextChoices):
        INTERACTIVE = "interactive", "Interactive"
        BULK = "bulk", "Bulk"

    TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.DEAD, Status.CANCELED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    principal_kind = models.CharField(max_length=20)
    principal_id = models.BigIntegerField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs")

    payload = models.JSONField(help_text="The Messages request: model, messages, system, max_tokens, metadata.")
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.QUEUE)
    queue = models.CharField(max_length=20, choices=Queue.choices, default=Queue.INTERACTIVE)
    model_requested = models.CharField(max_length=100)
    model_used = models.CharField(max_length=100, blank=True)

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0, help_text="Claims so far, counted before the call.")
    max_attempts = models.PositiveIntegerField(default=5)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True, help_text="Last publish to the broker.")
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    last_error_type = models.CharField(max_length=100, blank=True)
    last_error_message = models.TextField(blank=True)
    last_error_status = models.PositiveIntegerField(null=True, blank=True)
    last_error_request_id = models.CharField(max_length=200, blank=True)

    result = models.JSONField(null=True, blank=True, help_text="The Messages API response body.")
    usage = models.JSONField(null=True, blank=True)
    cost_micros = models.BigIntegerField(default=0)
    upstream_request_id = models.CharField(max_length=200, blank=True)
    upstream_message_id = models.CharField(max_length=200, blank=True)

    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    request_hash = models.CharField(max_length=64, blank=True)
    webhook_url = models.URLField(max_length=2000, blank=True)
    conversation_ref = models.CharField(max_length=64, blank=True, default="", help_text="For chat turns.")
    message_ref = models.CharField(max_length=64, blank=True, default="", help_text="For chat turns.")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["principal_kind", "principal_id", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="jobs_job_idempotency_key_per_principal",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "enqueued_at"], name="jobs_job_status_enqueued"),
            models.Index(fields=["status", "lease_expires_at"], name="jobs_job_status_lease"),
            models.Index(fields=["principal_kind", "principal_id", "-created_at"], name="jobs_job_principal"),
            models.Index(fields=["finished_at"], name="jobs_job_finished"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL


class DeadJob(Job):
    """Proxy so the admin can offer a changelist that is the dead-letter queue."""

    class Meta:
        proxy = True
        verbose_name = "dead job"
        verbose_name_plural = "dead-letter queue"


class WebhookDelivery(models.Model):
    """One POST attempt of a job's webhook; kept so operators can see why a receiver missed it."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="deliveries")
    attempt = models.PositiveIntegerField()
    url = models.URLField(max_length=2000)
    event = models.CharField(max_length=30)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    succeeded = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "attempt"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.job_id} #{self.attempt} -> {self.status_code or self.error[:40]}"
