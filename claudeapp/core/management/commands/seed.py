"""`manage.py seed`: idempotent seed data for every installed app.

Each app that has seed data ships a `seed.py` module with `run(*, stdout)`. Steps
run in INSTALLED_APPS order, so an app's seed may rely on those listed before it.
"""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction


class Command(BaseCommand):
    help = "Create or update seed data (demo users, models, prices, rules, limits). Safe to run twice."

    def handle(self, *args: Any, **options: Any) -> None:
        for app_config in apps.get_app_configs():
            module_name = f"{app_config.name}.seed"
            if find_spec(module_name) is None:
                continue
            with transaction.atomic():
                import_module(module_name).run(stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS("seed: done"))
