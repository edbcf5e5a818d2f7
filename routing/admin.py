from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from routing import replay, rulesets, services
from routing.errors import RoutingError
from routing.forms import ReplayForm, TryItForm
from routing.models import Model, ModelAlias, RoutingDecision, RoutingRule, RuleSet


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin):
    list_display = ["model_id", "display_name", "family", "enabled", "context_window", "fallback", "sort_order"]
    list_editable = ["enabled", "sort_order"]
    list_filter = ["family", "enabled"]
    search_fields = ["model_id", "display_name"]


@admin.register(ModelAlias)
class ModelAliasAdmin(admin.ModelAdmin):
    list_display = ["name", "model", "description"]


class RoutingRuleInline(admin.TabularInline):
    model = RoutingRule
    extra = 0
    fields = ["priority", "name", "enabled", "requested_model", "target", "classify", "mode"]
    show_change_link = True


@admin.register(RuleSet)
class RuleSetAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "created_at", "published_at", "replay_link"]
    list_filter = ["status"]
    readonly_fields = ["status", "published_at", "created_at"]
    inlines = [RoutingRuleInline]
    actions = ["copy_to_draft"]

    @admin.display(description="Replay")
    def replay_link(self, obj: RuleSet) -> str:
        from django.utils.html import format_html

        if obj.status == RuleSet.Status.PUBLISHED:
            return "-"
        return format_html(
            '<a href="{}">replay vs published</a>', reverse("admin:routing_ruleset_replay", args=[obj.pk])
        )

    @admin.action(description="Copy into a new draft")
    def copy_to_draft(self, request: HttpRequest, queryset) -> None:  # type: ignore[no-untyped-def]
        if queryset.count() != 1:
            self.message_user(request, "Pick exactly one rule set to copy.", messages.ERROR)
            return
        try:
            new = rulesets.create_draft(source_id=queryset.get().pk)
        except RoutingError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"Draft {new.name!r} created: edit its rules, replay it, then publish.")

    def get_urls(self):  # type: ignore[no-untyped-def]
        extra = [
            path("<int:pk>/replay/", self.admin_site.admin_view(self.replay_view), name="routing_ruleset_replay"),
            path("<int:pk>/publish/", self.admin_site.admin_view(self.publish_view), name="routing_ruleset_publish"),
        ]
        return extra + super().get_urls()

    def replay_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        rule_set = get_object_or_404(RuleSet, pk=pk)
        form = ReplayForm(request.GET or None)
        report = replay.replay(draft_id=pk, limit=form.cleaned_data["limit"]) if form.is_valid() else None
        context = {
            **self.admin_site.each_context(request),
            "title": f"Replay {rule_set.name} against the published rules",
            "rule_set": rule_set,
            "form": form,
            "report": report,
            "published": rulesets.published(),
            "assumed_output": replay.ASSUMED_OUTPUT_TOKENS,
            "can_publish": rule_set.status == RuleSet.Status.DRAFT and self.has_change_permission(request),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/routing/replay.html", context)

    def publish_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST" or not self.has_change_permission(request):
            raise PermissionDenied
        try:
            published = rulesets.publish(rule_set_id=pk)
        except RoutingError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, f"{published.name!r} is now live in every process within seconds.")
        return HttpResponseRedirect(reverse("admin:routing_ruleset_changelist"))


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "rule_set", "priority", "enabled", "requested_model", "target", "classify", "mode"]
    list_editable = ["priority", "enabled"]
    list_filter = ["rule_set__status", "rule_set", "enabled", "classify", "mode", "principal_kind"]
    list_select_related = ["rule_set"]
    search_fields = ["name", "description", "target", "message_regex"]
    ordering = ["rule_set", "priority", "id"]
    fieldsets = [
        (None, {"fields": ["rule_set", "name", "priority", "enabled", "description"]}),
        (
            "Conditions (all must hold; blank = any)",
            {
                "fields": [
                    "requested_model",
                    "principal_kind",
                    "group",
                    "partner_key_id",
                    ("min_input_tokens", "max_input_tokens"),
                    "message_regex",
                    "metadata_tags",
                ]
            },
        ),
        ("Action", {"fields": ["target", "classify", "mode"]}),
    ]

    def get_urls(self):  # type: ignore[no-untyped-def]
        extra = [path("try/", self.admin_site.admin_view(self.try_view), name="routing_routingrule_try")]
        return extra + super().get_urls()

    def try_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = TryItForm(request.POST or None)
        decision, error = None, None
        if request.method == "POST" and form.is_valid():
            rule_set = form.cleaned_data["rule_set"]
            try:
                decision = services.try_route(form.route_request(), rule_set_id=rule_set.pk if rule_set else None)
            except RoutingError as exc:
                error = str(exc)
        context = {
            **self.admin_site.each_context(request),
            "title": "Try a routing decision",
            "form": form,
            "decision": decision,
            "error": error,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/routing/try_it.html", context)


@admin.register(RoutingDecision)
class RoutingDecisionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "principal_kind", "principal_id", "requested_model", "model_id", "mode", "reason"]
    list_filter = ["mode", "model_id", "classifier_label", "principal_kind", "interactive", "created_at"]
    search_fields = ["reason", "requested_model", "rule_name"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
