from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from claudeapp.core import health
from claudeapp.ops import health_view, metrics_view
from routing import breaker_views

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view.scrape, name="metrics"),
    path("admin/breakers/", breaker_views.breakers, name="breakers"),
    path("admin/health/", health_view.console, name="health"),
    path("admin/breakers/<str:model_id>/close", breaker_views.breaker_reset, name="breaker_reset"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("billing/", include("billing.urls")),
    path("jobs/", include("claudeapp.jobs.urls")),
    path("portal/", include("claudeapp.portal.urls")),
    path("", include("claudeapp.api.urls")),
    path("", include("claudeapp.api.jobs_urls")),
    path("", include("claudeapp.chat.urls")),
]
