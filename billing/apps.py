from __future__ import annotations

from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing, budgets and limits"

    def ready(self) -> None:
        # Connect the receivers that bump the price, policy and budget cache versions on admin edits.
        from billing import budgets, limits, prices  # noqa: F401
