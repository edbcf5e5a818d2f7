"""Jobs in the admin: every job, the dead-letter queue (dead jobs, and failed ones beside them) with
Requeue (which warns before sending jobs into an open circuit) and Discard in the list and on a job's
own page, and the Message Batches the batch jobs went up in (read-only, with Cancel upstream).

Viewing takes the view permission; the actions (Requeue, Discard, Cancel upstream) take the change
permission (jobs.change_job, jobs.change_messagebatch): an operator who may only view sees no actions."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from billing import selectors
from claudeapp.claude import breaker
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


def open_circuits(jobs: list[Job]) -> dict[str, Any]:
    """The models these jobs would call first whose circuit is not closed now: a job requeued into an
    open circuit skips to its fallbacks or fails fast, using up its attempts."""
    found: dict[str, Any] = {}
    for model in sorted({job.routed_model for job in jobs}):
        status = breaker.state(model)
        if status.state != "closed":
            found[model] = status
    return found


@admin.action(description="Requeue: run again with a fresh set of attempts", permissions=["change"])
def requeue_jobs(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Job]) -> Any:
    circuits = open_circuits(list(queryset))
    if circuits and "confirm_open_circuit" not in request.POST:
        return _confirm_requeue(modeladmin, request, list(queryset), circuits)
    _apply(modeladmin, request, queryset, services.requeue, "requeued")
    return None


@admin.action(description="Discard: delete for good (its bill stays in the ledger)", permissions=["change"])
def discard_jobs(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Job]) -> None:
    _apply(modeladmin, request, queryset, services.discard, "discarded")


def _confirm_requeue(
    modeladmin: admin.ModelAdmin, request: HttpRequest, jobs: list[Job], circuits: dict[str, Any]
) -> TemplateResponse:
    match = request.resolver_match
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Requeue into an open circuit?",
        "jobs": jobs,
        "circuits": circuits,
        "opts": modeladmin.model._meta,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "single": match is not None and (match.url_name or "").endswith("_requeue"),
    }
    return TemplateResponse(request, "admin/jobs/requeue_confirm.html", context)


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
    change_form_template = "admin/jobs/job_change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs are created by the API and chat, with budgets and idempotency applied

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # "Discard" says what deleting a job means; Django's "Delete selected" would not

    def get_queryset(self, request: HttpRequest) -> QuerySet[Job]:
        return selectors.with_principal_names(super().get_queryset(request))

    @admin.display(description="principal")
    def principal(self, job: Job) -> str:
        return selectors.principal_link(job)

    @admin.display(description="last error", ordering="last_error_type")
    def short_error(self, job: Job) -> str:
        if not job.last_error_type:
            return ""
        status = f"{job.last_error_status} " if job.last_error_status else ""
        return f"{status}{job.last_error_type}: {job.last_error_message[:80]}"

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> Any:
        job = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if job is not None:
            extra["may_act"] = self.has_change_permission(request, job)
            extra["can_requeue"] = job.status in (Job.Status.FAILED, Job.Status.DEAD, Job.Status.CANCELED)
            extra["can_discard"] = job.is_terminal
            extra["circuits"] = open_circuits([job])
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self):  # type: ignore[no-untyped-def]
        info = self.opts.app_label, self.opts.model_name
        view = self.admin_site.admin_view
        return [
            path("<uuid:pk>/requeue/", view(self.requeue_view), name="{}_{}_requeue".format(*info)),
            path("<uuid:pk>/discard/", view(self.discard_view), name="{}_{}_discard".format(*info)),
            *super().get_urls(),
        ]

    def requeue_view(self, request: HttpRequest, pk: Any) -> Any:
        return requeue_jobs(self, request, self._one(request, pk)) or self._back(pk)

    def discard_view(self, request: HttpRequest, pk: Any) -> Any:
        discard_jobs(self, request, self._one(request, pk))
        return HttpResponseRedirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"))

    def _one(self, request: HttpRequest, pk: Any) -> QuerySet[Job]:
        if request.method != "POST" or not self.has_change_permission(request):
            raise PermissionDenied
        return Job.objects.filter(pk=pk)

    def _back(self, pk: Any) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[pk]))


@admin.register(DeadJob)
class DeadJobAdmin(JobAdmin):
    """The dead-letter queue: jobs that used up their attempts, and beside them the ones that failed for
    good at once (a 400 is never retried), each with its reason and the circuit of the model it calls."""

    list_display = ("id", "status", "mode", "model_requested", "circuit", "attempts", "short_error", "principal",
                    "finished_at")  # fmt: skip
    list_filter = ("status", "mode", "queue", "model_requested", "last_error_type")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Job]:
        return super().get_queryset(request).filter(status__in=[Job.Status.DEAD, Job.Status.FAILED])

    @admin.display(description="circuit now")
    def circuit(self, job: Job) -> str:
        status = breaker.state(job.routed_model)
        if status.state == "closed":
            return "closed"
        return format_html('<strong class="circuit-open">{}</strong>', str(status.state).replace("_", "-"))


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
