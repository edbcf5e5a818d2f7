"""Jobs in the admin: every job, the dead-letter queue (dead jobs) with Requeue and Discard, and the
Message Batches the batch jobs went up in (read-only, with Cancel upstream).

Viewing takes the view permission; the actions (Requeue, Discard, Cancel upstream) take the change
permission (jobs.change_job, jobs.change_messagebatch): an operator who may only view sees no actions."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from claudeapp.jobs import batches, services
from claudeapp.jobs.models import DeadJob, Job, MessageBatch, WebhookDelivery


class WebhookDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    extra = 0
    can_delete = False
    fields = ("attempt", "event", "status_code", "succeeded", "error", "duration_ms", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.action(description="Requeue selected jobs (fresh attempts)", permissions=["change"])
def requeue_jobs(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Job]) -> None:
    _apply(modeladmin, request, queryset, services.requeue, "requeued")


@admin.action(description="Discard selected jobs for good", permissions=["change"])
def discard_jobs(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Job]) -> None:
    _apply(modeladmin, request, queryset, services.discard, "discarded")


def _apply(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Job], verb: Any, done: str) -> None:
    ok, refused = 0, []
    for job_id in queryset.order_by("pk").values_list("pk", flat=True):
        try:
            verb(job_id=job_id)
            ok += 1
        except Exception as exc:  # one bad row (budget, model map) must not hide the others' outcome
            refused.append(f"{job_id}: {exc}")
    if ok:
        modeladmin.message_user(request, f"{ok} job(s) {done}.", messages.SUCCESS)
    for line in refused[:20]:
        modeladmin.message_user(request, line, messages.WARNING)


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "mode", "queue", "model_requested", "model_used", "attempts", "short_error",
                    "principal", "created_at", "finished_at")  # fmt: skip
    list_filter = ("status", "mode", "queue", "model_requested", "last_error_type")
    search_fields = ("=id", "idempotency_key", "upstream_request_id", "last_error_request_id", "user__username",
                     "batch__upstream_id")  # fmt: skip
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    actions = (requeue_jobs, discard_jobs)
    inlines = (WebhookDeliveryInline,)
    readonly_fields = tuple(f.name for f in Job._meta.fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs are created by the API and chat, with budgets and idempotency applied

    @admin.display(description="principal")
    def principal(self, job: Job) -> str:
        return f"{job.principal_kind}:{job.principal_id} ({job.user})"

    @admin.display(description="last error", ordering="last_error_type")
    def short_error(self, job: Job) -> str:
        if not job.last_error_type:
            return ""
        status = f"{job.last_error_status} " if job.last_error_status else ""
        return f"{status}{job.last_error_type}: {job.last_error_message[:80]}"


@admin.register(DeadJob)
class DeadJobAdmin(JobAdmin):
    """The dead-letter queue: jobs that used up their attempts."""

    list_filter = ("mode", "queue", "model_requested", "last_error_type")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Job]:
        return super().get_queryset(request).filter(status=Job.Status.DEAD)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("job", "attempt", "event", "status_code", "succeeded", "duration_ms", "created_at")
    list_filter = ("succeeded", "event")
    search_fields = ("=job__id",)
    readonly_fields = tuple(f.name for f in WebhookDelivery._meta.fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class BatchJobInline(admin.TabularInline):
    model = Job
    fk_name = "batch"
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("id", "status", "attempts", "last_error_type", "cost_micros", "finished_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.action(description="Cancel upstream (unprocessed requests go to the next batch)", permissions=["change"])
def cancel_upstream(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[MessageBatch]) -> None:
    ok, refused = 0, []
    for batch_id in queryset.order_by("pk").values_list("pk", flat=True):
        try:
            batches.cancel_upstream(batch_id=batch_id)
            ok += 1
        except Exception as exc:  # one refused batch must not hide the others' outcome
            refused.append(f"batch {batch_id}: {exc}")
    if ok:
        modeladmin.message_user(request, f"{ok} batch(es) asked to cancel.", messages.SUCCESS)
    for line in refused[:20]:
        modeladmin.message_user(request, line, messages.WARNING)


@admin.register(MessageBatch)
class MessageBatchAdmin(admin.ModelAdmin):
    list_display = ("__str__", "model", "status", "request_count", "succeeded_count", "errored_count",
                    "expired_count", "canceled_count", "submitted_at", "ended_at")  # fmt: skip
    list_filter = ("status", "model")
    search_fields = ("=upstream_id",)
    date_hierarchy = "created_at"
    actions = (cancel_upstream,)
    inlines = (BatchJobInline,)
    readonly_fields = tuple(f.name for f in MessageBatch._meta.fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the beat task submits batches

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the jobs point here for audit; finished jobs are purged on their own
