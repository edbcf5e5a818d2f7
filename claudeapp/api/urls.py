from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from claudeapp.api import (
    anthropic_batch_views,
    anthropic_views,
    conversations_api,
    messages_views,
    self_service,
    usage_api,
    views,
)
from claudeapp.api.anthropic_schema import (
    AnthropicMessagesStub,
    BatchCancelStub,
    BatchesStub,
    BatchResultsStub,
    BatchStub,
    CountTokensStub,
)
from claudeapp.api.async_schema import MessagesStub, document

# Included at the site root, so every route carries its full path.
urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/models", views.ModelsApi.as_view(), name="api-models"),
    path("api/v1/me", views.MeApi.as_view(), name="api-me"),
    path("api/v1/messages", document(messages_views.messages, MessagesStub), name="api-messages"),
    path("api/v1/conversations", conversations_api.ConversationsApi.as_view(), name="api-conversations"),
    path(
        "api/v1/conversations/<str:conversation_id>",
        conversations_api.ConversationApi.as_view(),
        name="api-conversation",
    ),
    path("api/v1/usage", usage_api.UsageApi.as_view(), name="api-usage"),
    path("api/v1/limits", self_service.LimitsApi.as_view(), name="api-limits"),
    path(
        "api/v1/limits/budgets/<int:budget_id>/alerts", self_service.BudgetAlertsApi.as_view(), name="api-budget-alerts"
    ),
    path("api/v1/keys/current/rotate", self_service.KeyRotateApi.as_view(), name="api-key-rotate"),
    path("api/v1/keys/current/webhook_secret", self_service.WebhookSecretApi.as_view(), name="api-webhook-secret"),
    path(
        "api/v1/keys/current/webhook_secret/rotate",
        self_service.WebhookSecretRotateApi.as_view(),
        name="api-webhook-secret-rotate",
    ),
    path("anthropic/v1/models", views.AnthropicModelsApi.as_view(), name="anthropic-models"),
    path("anthropic/v1/models/<str:model_id>", views.AnthropicModelApi.as_view(), name="anthropic-model"),
    path("anthropic/v1/messages", document(anthropic_views.messages, AnthropicMessagesStub), name="anthropic-messages"),
    path(
        "anthropic/v1/messages/count_tokens",
        document(anthropic_views.count_tokens, CountTokensStub),
        name="anthropic-count-tokens",
    ),
    path(
        "anthropic/v1/messages/batches", document(anthropic_batch_views.batches, BatchesStub), name="anthropic-batches"
    ),
    path(
        "anthropic/v1/messages/batches/<str:batch_id>",
        document(anthropic_batch_views.batch, BatchStub),
        name="anthropic-batch",
    ),
    path(
        "anthropic/v1/messages/batches/<str:batch_id>/cancel",
        document(anthropic_batch_views.cancel, BatchCancelStub),
        name="anthropic-batch-cancel",
    ),
    path(
        "anthropic/v1/messages/batches/<str:batch_id>/results",
        document(anthropic_batch_views.results, BatchResultsStub),
        name="anthropic-batch-results",
    ),
]
