from __future__ import annotations

from django.urls import path

from claudeapp.portal import views

app_name = "portal"
urlpatterns = [
    path("", views.keys_page, name="keys"),
    path("keys/create", views.create_key, name="create-key"),
    path("keys/<int:key_id>/rotate", views.rotate_key, name="rotate-key"),
    path("keys/<int:key_id>/revoke", views.revoke_key, name="revoke-key"),
    path("keys/<int:key_id>/webhook-secret/rotate", views.rotate_webhook_secret, name="rotate-webhook-secret"),
    path("keys/<int:key_id>/webhook-test", views.send_test_event, name="webhook-test"),
    path("keys/<int:key_id>/budgets/<int:budget_id>/alerts", views.set_budget_alerts, name="budget-alerts"),
    path(
        "keys/<int:key_id>/budgets/<int:budget_id>/alerts/remove",
        views.clear_budget_alerts,
        name="budget-alerts-remove",
    ),
    path("usage", views.usage_page, name="usage"),
    path("calls", views.calls_page, name="calls"),
    path("statement.csv", views.statement_csv, name="statement"),
]
