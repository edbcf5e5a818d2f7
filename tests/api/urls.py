"""The site's API routes plus test-only endpoints under the same prefixes."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from tests.api import views_for_tests as views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/_test/echo", views.EchoApi.as_view()),
    path("api/v1/_test/raise/<str:name>", views.RaiseApi.as_view()),
    path("api/v1/_test/keys", views.KeyListApi.as_view()),
    path("api/v1/_test/async", views.async_echo),
    path("api/v1/_test/async-raise/<str:name>", views.async_raise),
    path("anthropic/v1/_test/async", views.async_echo),
    path("anthropic/v1/_test/raise/<str:name>", views.RaiseApi.as_view()),
    path("", include("claudeapp.api.urls")),
    path("", include("claudeapp.api.jobs_urls")),
]
