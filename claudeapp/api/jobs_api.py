"""Partner REST API for jobs: submit, read, list, cancel, requeue. Parse, one service call, render."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from claudeapp.api import jobs_schema
from claudeapp.api.auth import HasScope, PartnerKeyAuthentication
from claudeapp.api.bodies import ApiJSONParser
from claudeapp.api.errors import register_error
from claudeapp.api.pagination import ApiCursorPagination, filter_date_range
from claudeapp.jobs import selectors, services
from claudeapp.jobs.errors import IdempotencyConflict, InvalidPayload, InvalidTransition, InvalidWebhookUrl, JobNotFound
from claudeapp.jobs.models import Job
from claudeapp.jobs.rendering import job_json
from routing.errors import ModelDisabled, RoutingError, UnknownModel


def register_errors() -> None:
    """This module's mappings (ApiConfig.ready)."""
    register_error(JobNotFound, 404, "not_found_error")
    register_error(InvalidTransition, 409, "conflict_error")
    register_error(IdempotencyConflict, 409, "idempotency_error")


PAYLOAD_FIELDS = ("model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "tools", "tool_choice",
                  "thinking")  # fmt: skip


class JobsApiView(APIView):
    authentication_classes = [PartnerKeyAuthentication]
    permission_classes = [IsAuthenticated, HasScope("jobs")]
    renderer_classes = [JSONRenderer]
    parser_classes = [ApiJSONParser]  # the API's one JSON parser: depth, NUL, non-finite numbers, size


class JobListCreateApi(JobsApiView):
    class JobCreateInput(serializers.Serializer):
        model = serializers.CharField(max_length=100)
        messages = serializers.ListField(child=serializers.DictField(), min_length=1)
        max_tokens = serializers.IntegerField(min_value=1)
        system = serializers.JSONField(required=False)
        metadata = serializers.DictField(required=False)
        stop_sequences = serializers.ListField(child=serializers.CharField(), required=False)
        tools = serializers.ListField(child=serializers.DictField(), required=False)
        tool_choice = serializers.DictField(required=False)
        thinking = serializers.DictField(required=False)
        webhook_url = serializers.URLField(required=False, max_length=2000)
        # batch: grouped into a Message Batch by the beat task (50% off, results within 24 h).
        # Left out, the routing rules decide (e.g. requests tagged bulk go to a batch).
        mode = serializers.ChoiceField(choices=Job.Mode.values, required=False)
        queue = serializers.ChoiceField(choices=Job.Queue.values, default=Job.Queue.INTERACTIVE)

    class ListInput(serializers.Serializer):
        status = serializers.ChoiceField(choices=Job.Status.values, required=False)

    @jobs_schema.create(JobCreateInput)
    def post(self, request: Request) -> Response:
        data = _valid(self.JobCreateInput, request.data)
        key = _idempotency_key(request)
        try:
            job = services.create(
                principal=request._request.principal,
                payload={name: data[name] for name in PAYLOAD_FIELDS if name in data},
                webhook_url=data.get("webhook_url"),
                idempotency_key=key,
                mode=data.get("mode"),
                queue=data["queue"],
            )
        except (InvalidPayload, InvalidWebhookUrl) as exc:
            raise exceptions.ValidationError({exc.field: [str(exc)]}) from exc
        except (UnknownModel, ModelDisabled):
            raise  # 404 naming `model`, as on /api/v1/messages (claudeapp.api.errors)
        except RoutingError as exc:
            raise exceptions.ValidationError({"model": [str(exc)]}) from exc
        headers = {"Location": f"/api/v1/jobs/{job.id}"}
        if getattr(job, "replayed", False):
            headers["Idempotent-Replayed"] = "true"
        return Response(job_json(job), status=202, headers=headers)

    @jobs_schema.listing
    def get(self, request: Request) -> Response:
        query = _valid(self.ListInput, request.query_params)
        rows = selectors.for_principal(principal=request._request.principal, status=query.get("status"))
        rows = filter_date_range(rows, request.query_params)
        paginator = ApiCursorPagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response([job_json(job) for job in page])


class JobDetailApi(JobsApiView):
    @jobs_schema.detail
    def get(self, request: Request, job_id: str) -> Response:
        return Response(job_json(services.get_for_principal(job_id=job_id, principal=request._request.principal)))


class JobCancelApi(JobsApiView):
    @jobs_schema.cancel
    def post(self, request: Request, job_id: str) -> Response:
        return Response(job_json(services.cancel(job_id=job_id, principal=request._request.principal)))


class JobRequeueApi(JobsApiView):
    @jobs_schema.requeue
    def post(self, request: Request, job_id: str) -> Response:
        job = services.requeue(job_id=job_id, principal=request._request.principal)
        return Response(job_json(job), status=202, headers={"Location": f"/api/v1/jobs/{job.id}"})


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 255:
        raise exceptions.ValidationError({"Idempotency-Key": ["must be 1 to 255 characters"]})
    return key


class JobDiscardApi(JobsApiView):
    @jobs_schema.discard
    def post(self, request: Request, job_id: str) -> Response:
        services.discard(job_id=job_id, principal=request._request.principal)
        return Response(status=204)
