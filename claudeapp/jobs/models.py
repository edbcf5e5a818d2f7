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
    routing_decision = models.ForeignKey(
        "routing.RoutingDecision", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    routing_reason = models.CharField(max_length=300, blank=True)

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
    # The webhook delivery this job's end still owes (webhooks.py), durable like the job itself: the
    # attempt to make next, when it is due, and the lease of the attempt in flight (renewed by the
    # heartbeat). The sweeper re-publishes one whose lease ran out or that nobody picked up. Nothing
    # owed (delivered, given up, no webhook): due and lease are null.
    webhook_attempt = models.PositiveIntegerField(default=0)
    webhook_due_at = models.DateTimeField(null=True, blank=True)
    webhook_lease_expires_at = models.DateTimeField(null=True, blank=True)
    conversation_ref = models.CharField(max_length=64, blank=True, default="", help_text="For chat turns.")
    message_ref = models.CharField(max_length=64, blank=True, default="", help_text="For chat turns.")
    # mode=batch: the Message Batch the job was last submitted in, and the budget hold for it.
    batch = models.ForeignKey("MessageBatch", on_delete=models.SET_NULL, null=True, blank=True, related_name="jobs")
    reservation_id = models.BigIntegerField(null=True, blank=True, help_text="Budget hold while in a batch.")

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
            models.Index(fields=["mode", "status", "enqueued_at"], name="jobs_job_mode_status_enqueued"),
            models.Index(
                fields=["webhook_due_at"], condition=Q(webhook_due_at__isnull=False), name="jobs_job_webhook_owed"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def routed_model(self) -> str:
        """The model routing chose at creation (stored in the payload); `model_requested` may be `auto`."""
        return str(self.payload.get("model") or self.model_requested)


class DeadJob(Job):
    """Proxy so the admin can offer a changelist that is the dead-letter queue."""

    class Meta:
        proxy = True
        verbose_name = "dead job"
        verbose_name_plural = "dead-letter queue"


class MessageBatch(models.Model):
    """One submission to the Message Batches API: the jobs in it point here (Job.batch).

    `submitting` is set in the same transaction that claims the jobs; the upstream id arrives
    after the create call. A row left in `submitting` means the process died in between.
    """

    class Status(models.TextChoices):
        SUBMITTING = "submitting", "Submitting"
        IN_PROGRESS = "in_progress", "In progress"
        CANCELING = "canceling", "Canceling"
        ENDED = "ended", "Ended"  # upstream ended; results not yet all applied
        DONE = "done", "Done"  # every result applied to its job
        FAILED = "failed", "Failed"  # the create call was refused; the jobs went back or failed

    OPEN = (Status.IN_PROGRESS, Status.CANCELING, Status.ENDED)

    upstream_id = models.CharField(max_length=100, blank=True, default="")
    model = models.CharField(max_length=100)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SUBMITTING)
    request_count = models.PositiveIntegerField(default=0)
    size_bytes = models.BigIntegerField(default=0)
    processing_count = models.PositiveIntegerField(default=0)
    succeeded_count = models.PositiveIntegerField(default=0)
    errored_count = models.PositiveIntegerField(default=0)
    canceled_count = models.PositiveIntegerField(default=0)
    expired_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    polled_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "message batch"
        verbose_name_plural = "message batches"
        constraints = [
            models.UniqueConstraint(
                fields=["upstream_id"], condition=~Q(upstream_id=""), name="jobs_messagebatch_upstream_id"
            ),
        ]
        indexes = [models.Index(fields=["status", "polled_at"], name="jobs_batch_status_polled")]

    def __str__(self) -> str:
        return f"{self.upstream_id or f'batch #{self.pk}'} ({self.model}, {self.status})"


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


class WebhookSecret(models.Model):
    """A principal's webhook signing secret, once it was issued or rotated (before that, the secret is
    derived from JOBS_WEBHOOK_SECRET, see webhooks.secret_for). Stored in clear: signing needs it, and
    the partner can read it back through the API. After a rotation the previous secret signs too until
    `previous_valid_until`, so receivers can switch without missing a delivery."""

    principal_kind = models.CharField(max_length=20)
    principal_id = models.BigIntegerField()
    secret = models.CharField(max_length=100)
    previous_secret = models.CharField(max_length=100, blank=True, default="")
    previous_valid_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["principal_kind", "principal_id"], name="jobs_webhooksecret_principal")
        ]

    def __str__(self) -> str:
        return f"webhook secret of {self.principal_kind} {self.principal_id}"
