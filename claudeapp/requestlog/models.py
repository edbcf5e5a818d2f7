"""The request log (one row per call the gateway answered, refusals included) and its settings."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class RequestLog(models.Model):
    """One call's ending, for operators: who, where, how it was routed, what it cost. Written in bulk,
    off the request path (buffer.py); kept for the retention set in RequestLogSettings."""

    class Status(models.TextChoices):
        COMPLETE = "complete", "Complete"
        DISCONNECT = "disconnect", "Reader left"
        CUT = "cut", "Stream cut"
        ERROR = "error", "Upstream error after output"
        FAILED = "failed", "Failed"
        REFUSED = "refused", "Refused"
        INTERRUPTED = "interrupted", "Interrupted (its process died)"

    created_at = models.DateTimeField(db_index=True)
    principal_kind = models.CharField(max_length=20)
    principal_id = models.BigIntegerField()
    surface = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_type = models.CharField(max_length=100, blank=True)
    model_requested = models.CharField(max_length=100, blank=True)
    model_used = models.CharField(max_length=100, blank=True)
    route_reason = models.CharField(max_length=300, blank=True)
    route_decision_id = models.BigIntegerField(null=True, blank=True)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cost_micros = models.BigIntegerField(default=0)
    request_id = models.CharField(max_length=100, blank=True, db_index=True)
    upstream_request_id = models.CharField(max_length=100, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    prompt_excerpt = models.TextField(blank=True, help_text="Only when an operator turned prompt logging on.")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "logged call"
        verbose_name_plural = "request log"
        indexes = [
            models.Index(fields=["principal_kind", "principal_id", "-created_at"], name="reqlog_principal"),
            models.Index(fields=["status", "-created_at"], name="reqlog_status"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.status} {self.model_used or self.model_requested}"


class RequestLogSettings(models.Model):
    """One row: how long the log is kept and whether prompt excerpts are stored (off by default)."""

    retention_days = models.PositiveIntegerField(
        default=settings.REQUEST_LOG_RETENTION_DAYS, help_text="Rows older than this are deleted every hour."
    )
    store_prompts = models.BooleanField(
        default=False,
        help_text="Keep the first 500 characters of the last user message with each call. Off: no prompt text.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "request log settings"

    def __str__(self) -> str:
        return f"keep {self.retention_days} days, prompts {'on' if self.store_prompts else 'off'}"


class ScopePicker(models.Model):
    """No table: its foreign keys give the admin's autocomplete a field to look users, groups and partner
    keys up through, for the scope of a budget or a rate-limit policy (which store a bare id)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.DO_NOTHING, related_name="+")
    group = models.ForeignKey("auth.Group", null=True, on_delete=models.DO_NOTHING, related_name="+")
    partner_key = models.ForeignKey("api.PartnerKey", null=True, on_delete=models.DO_NOTHING, related_name="+")

    class Meta:
        managed = False

    def __str__(self) -> str:
        return "scope picker"
