"""Partner API routes for jobs, with full paths: include this module at the site root."""

from __future__ import annotations

from django.urls import path

from claudeapp.jobs import api

urlpatterns = [
    path("api/v1/jobs", api.JobListCreateApi.as_view(), name="api-jobs"),
    path("api/v1/jobs/<str:job_id>", api.JobDetailApi.as_view(), name="api-job"),
    path("api/v1/jobs/<str:job_id>/cancel", api.JobCancelApi.as_view(), name="api-job-cancel"),
    path("api/v1/jobs/<str:job_id>/requeue", api.JobRequeueApi.as_view(), name="api-job-requeue"),
    path("api/v1/jobs/<str:job_id>/discard", api.JobDiscardApi.as_view(), name="api-job-discard"),
]
