"""Jobs in the admin: every job, and the dead-letter queue (dead jobs) with Requeue and Discard."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from claudeapp.jobs import services
from claudeapp.jobs.models import DeadJob, Job, WebhookDelivery


class WebhookDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    extra = 0
    can_delete = False
    fields = ("attempt", "event", "status_code", "succeeded", "error", "duration_ms", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.action(description="Requeue selected jobs (fresh attempts)")
def requeue_jobs(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Job]) -> None:
    _apply(modeladmin, request, queryset, services.requeue, "requeued")


@admin.action(description="Discard selected jobs for good")
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
    search_fields = ("=id", "idempotency_key", "upstream_request_id", "last_error_request_id", "user__username")
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
