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
    error = JobError(allow_null=True)
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
    object = serializers.CharField(default="list")
    data = JobOutput(many=True)
    has_more = serializers.BooleanField()


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
    responses={202: JobOutput, 200: OpenApiResponse(JobOutput, description="Idempotent replay")},
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
listing = extend_schema(operation_id="jobs_list", summary="Your jobs, newest first", responses={200: JobList})
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
