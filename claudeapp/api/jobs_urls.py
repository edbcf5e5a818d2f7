"""Partner API routes for jobs, with full paths: include this module at the site root."""

from __future__ import annotations

from django.urls import path

from claudeapp.api import jobs_api

urlpatterns = [
    path("api/v1/jobs", jobs_api.JobListCreateApi.as_view(), name="api-jobs"),
    path("api/v1/jobs/<str:job_id>", jobs_api.JobDetailApi.as_view(), name="api-job"),
    path("api/v1/jobs/<str:job_id>/cancel", jobs_api.JobCancelApi.as_view(), name="api-job-cancel"),
    path("api/v1/jobs/<str:job_id>/requeue", jobs_api.JobRequeueApi.as_view(), name="api-job-requeue"),
    path("api/v1/jobs/<str:job_id>/discard", jobs_api.JobDiscardApi.as_view(), name="api-job-discard"),
]
