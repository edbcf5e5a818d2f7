"""OpenAPI description of the jobs API (documentation only; responses are built by rendering.job_json)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers

from claudeapp.jobs.models import Job


class JobError(serializers.Serializer):
    type = serializers.CharField()
    message = serializers.CharField()
    status = serializers.IntegerField(allow_null=True)
    upstream_request_id = serializers.CharField(allow_null=True)


class JobRoute(serializers.Serializer):
    model = serializers.CharField(allow_null=True)
    reason = serializers.CharField(allow_null=True)


class JobOutput(serializers.Serializer):
    id = serializers.UUIDField()
    object = serializers.CharField(default="job")
    status = serializers.ChoiceField(choices=Job.Status.values)
    mode = serializers.ChoiceField(choices=Job.Mode.values)
    queue = serializers.ChoiceField(choices=Job.Queue.values)
    model_requested = serializers.CharField()
    model_used = serializers.CharField(allow_null=True)
    route = JobRoute()
    attempts = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    eta = serializers.DateTimeField(
        allow_null=True,
        help_text="Batch jobs: when the result should be in (the grouping wait, JOBS_BATCH_MAX_WAIT_SECONDS, "
        "300 s by default, plus upstream's processing, JOBS_BATCH_EXPECTED_SECONDS). Null for queued-mode and "
        "finished jobs.",
    )
    error = JobError(allow_null=True, help_text="Why the job failed, or why it is waiting; null once it succeeded")
    result = serializers.JSONField(allow_null=True, help_text="The Messages API response, once succeeded.")
    usage = serializers.JSONField(allow_null=True)
    cost_micros = serializers.IntegerField()
    upstream_request_id = serializers.CharField(allow_null=True)
    conversation_id = serializers.CharField(allow_null=True)
    message_id = serializers.CharField(allow_null=True)
    webhook_url = serializers.URLField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class JobList(serializers.Serializer):
    data = JobOutput(many=True)
    has_more = serializers.BooleanField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Same key + same body returns the original job; same key + another body is 409.",
)


def create(request_serializer: type[serializers.Serializer]):  # type: ignore[no-untyped-def]
    return extend_schema(request=request_serializer, **_CREATE)


_CREATE = dict(
    operation_id="jobs_create",
    summary="Submit a job (202; poll it, or get a signed webhook when it ends)",
    parameters=[IDEMPOTENCY_KEY],
    responses={
        202: OpenApiResponse(
            JobOutput,
            description="Accepted (or, with `Idempotent-Replayed: true`, the original job of a replayed "
            "Idempotency-Key: same status code, same body)",
        )
    },
    examples=[
        OpenApiExample(
            "queued request",
            request_only=True,
            value={
                "model": "auto",
                "max_tokens": 512,
                "messages": [{"role": "user", "content": "Summarise this ticket: ..."}],
                "webhook_url": "https://partner.example.com/hooks/claude",
            },
        ),
        OpenApiExample(
            "bulk work at half price",
            request_only=True,
            value={
                "model": "simple",
                "max_tokens": 256,
                "mode": "batch",
                "messages": [{"role": "user", "content": "Classify: ..."}],
            },
        ),
    ],
)
listing = extend_schema(
    operation_id="jobs_list",
    summary="Your jobs, newest first (cursor pages)",
    parameters=[
        OpenApiParameter("status", str, enum=Job.Status.values, description="Only jobs in this status"),
        OpenApiParameter("created_after", str, description="ISO date or date-time, inclusive"),
        OpenApiParameter(
            "created_before", str, description="ISO date or date-time, exclusive (a date: that day included)"
        ),
        OpenApiParameter("limit", int, description="Page size, 1 to 100 (default 20)"),
        OpenApiParameter("cursor", str, description="From `next` / `previous`"),
    ],
    responses={200: JobList},
)
detail = extend_schema(operation_id="jobs_retrieve", summary="One job", responses={200: JobOutput})
cancel = extend_schema(
    operation_id="jobs_cancel", summary="Cancel a job that has not started", request=None, responses={200: JobOutput}
)
requeue = extend_schema(
    operation_id="jobs_requeue",
    summary="Requeue a dead, failed or canceled job (the dead-letter queue)",
    request=None,
    responses={202: JobOutput},
)
discard = extend_schema(
    operation_id="jobs_discard",
    summary="Drop a finished, dead, failed or canceled job for good (its ledger entry stays)",
    request=None,
    responses={204: None},
)
