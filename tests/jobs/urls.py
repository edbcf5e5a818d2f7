"""The routes these tests need (admin and the jobs API), independent of the site's root urlconf."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("claudeapp.api.jobs_urls")),
]
