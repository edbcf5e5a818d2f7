from __future__ import annotations

from django.contrib import admin

from routing.models import Model, ModelAlias


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin):
    list_display = ["model_id", "display_name", "family", "enabled", "context_window", "fallback", "sort_order"]
    list_editable = ["enabled", "sort_order"]
    list_filter = ["family", "enabled"]
    search_fields = ["model_id", "display_name"]


@admin.register(ModelAlias)
class ModelAliasAdmin(admin.ModelAdmin):
    list_display = ["name", "model", "description"]
