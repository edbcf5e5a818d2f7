from __future__ import annotations

from django.urls import path

from billing import views

app_name = "billing"
urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("ledger.csv", views.ledger_csv, name="ledger_csv"),
]
