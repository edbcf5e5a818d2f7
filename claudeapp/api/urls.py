from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from claudeapp.api import views

# Included at the site root, so every route carries its full path.
urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/models", views.ModelsApi.as_view(), name="api-models"),
    path("api/v1/me", views.MeApi.as_view(), name="api-me"),
    path("anthropic/v1/models", views.AnthropicModelsApi.as_view(), name="anthropic-models"),
    path("anthropic/v1/models/<str:model_id>", views.AnthropicModelApi.as_view(), name="anthropic-model"),
]
