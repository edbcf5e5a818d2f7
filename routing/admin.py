"""The routing console: the model map (which protects itself), rule sets (draft -> replay -> publish,
rollback) and their rules (drafts only), and the decisions log (read-only)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from billing import selectors
from billing.admin import principal_search
from routing import modelmap, replay, rulesets, services
from routing.errors import RoutingError
from routing.forms import PublishForm, ReplayForm, RoutingRuleForm, TryItForm
from routing.models import Model, ModelAlias, RoutingDecision, RoutingRule, RuleSet


class ModelForm(forms.ModelForm):
    """Disabling a model that something points to asks first, listing what does."""

    confirm_disable = forms.BooleanField(
        required=False, label="Disable it anyway", help_text="Shown when aliases, rules or fallbacks use this model."
    )

    class Meta:
        model = Model
        fields = ["model_id", "display_name", "family", "enabled", "context_window", "max_output_tokens",
                  "fallback", "retires_on", "sort_order"]  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fallback = self.fields.get("fallback")
        if fallback is not None:
            choices = Model.objects.filter(enabled=True)
            if self.instance.pk:
                choices = choices.exclude(pk=self.instance.pk)
            fallback.queryset = choices  # type: ignore[attr-defined]
            fallback.help_text = (
                "Tried next when this model is overloaded or its circuit is open (enabled models only)."
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        turning_off = self.instance.pk and self.instance.enabled and data.get("enabled") is False
        if turning_off and not data.get("confirm_disable"):
            found = modelmap.dependents(self.instance.model_id)
            if found:
                raise forms.ValidationError(
                    "Still in use: %(what)s. Calls and rules using it will stop reaching it. "
                    "Tick “Disable it anyway” to go ahead.",
                    params={"what": "; ".join(found.lines())},
                )
        return data


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin):
    form = ModelForm
    list_display = ["model_id", "display_name", "family", "enabled", "context_window", "fallback", "sort_order"]
    list_editable = ["sort_order"]  # enabled is changed on the model's page, where it asks first
    list_filter = ["family", "enabled"]
    search_fields = ["model_id", "display_name"]

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        fields = list(super().get_fields(request, obj))
        if obj is None and "confirm_disable" in fields:
            fields.remove("confirm_disable")
        return fields

    def render_delete_form(self, request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
        obj = context.get("object")
        if isinstance(obj, Model):
            context["dependents"] = modelmap.dependents(obj.model_id).lines()
        return super().render_delete_form(request, context)


@admin.register(ModelAlias)
class ModelAliasAdmin(admin.ModelAdmin):
    list_display = ["name", "model", "description"]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "model":
            kwargs["queryset"] = Model.objects.filter(enabled=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


def _editable(obj: object) -> bool:
    rule_set = obj if isinstance(obj, RuleSet) else getattr(obj, "rule_set", None)
    return rulesets.is_editable(rule_set)


class RoutingRuleInline(admin.TabularInline):
    model = RoutingRule
    form = RoutingRuleForm
    extra = 0
    fields = ["priority", "name", "enabled", "requested_model", "message_regex", "target", "classify", "mode"]
    show_change_link = True

    # A published or archived set is history: its rules are shown, never edited, added or deleted.
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _editable(obj) and super().has_change_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _editable(obj) and super().has_add_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _editable(obj) and super().has_delete_permission(request, obj)


@admin.register(RuleSet)
class RuleSetAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "rule_count", "created_at", "published_at", "next_step"]
    list_filter = ["status"]
    readonly_fields = ["status", "published_at", "created_at"]
    fields = ["name", "note", "status", "published_at", "created_at"]
    inlines = [RoutingRuleInline]
    actions = ["copy_to_draft"]
    change_form_template = "admin/routing/ruleset/change_form.html"
    change_list_template = "admin/routing/ruleset/change_list.html"

    @admin.display(description="rules")
    def rule_count(self, obj: RuleSet) -> int:
        return obj.rules.count()

    @admin.display(description="next step")
    def next_step(self, obj: RuleSet) -> str:
        if obj.status == RuleSet.Status.DRAFT:
            url = reverse("admin:routing_ruleset_replay", args=[obj.pk])
            return format_html('<a href="{}">Replay, then publish</a>', url)
        if obj.status == RuleSet.Status.PUBLISHED:
            return "live"
        return "archived (copy it into a draft to reuse)"

    def has_change_permission(self, request: HttpRequest, obj: RuleSet | None = None) -> bool:
        if obj is not None and not rulesets.is_editable(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a set starts as a copy (one draft at a time): "New draft from the live rules"

    def has_delete_permission(self, request: HttpRequest, obj: RuleSet | None = None) -> bool:
        if obj is not None and obj.status == RuleSet.Status.PUBLISHED:
            return False  # the live set is replaced by publishing or rolling back, never deleted
        return super().has_delete_permission(request, obj)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        obj = self.get_object(request, object_id)
        extra = {**(extra_context or {}), **self._tools_context(request, obj)}
        return super().change_view(request, object_id, form_url, extra)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        extra = {**(extra_context or {}), **self._tools_context(request, None)}
        return super().changelist_view(request, extra)

    def _tools_context(self, request: HttpRequest, obj: RuleSet | None) -> dict[str, Any]:
        may_change = super().has_change_permission(request)
        live, before, draft = rulesets.published(), rulesets.previous(), rulesets.draft()
        return {
            "rule_set_obj": obj,
            "may_change": may_change,
            "live_set": live,
            "draft_set": draft,
            "rollback_to": before if may_change and live is not None else None,
            "is_draft": obj is not None and obj.status == RuleSet.Status.DRAFT,
            "can_copy": may_change and draft is None,
        }

    @admin.action(description="Copy into a new draft")
    def copy_to_draft(self, request: HttpRequest, queryset: QuerySet[RuleSet]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Pick exactly one rule set to copy.", messages.ERROR)
            return None
        return self._copy(request, queryset.get().pk)

    def _copy(self, request: HttpRequest, source_id: int) -> HttpResponse | None:
        try:
            new = rulesets.create_draft(source_id=source_id)
        except RoutingError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        self.message_user(request, f"Draft {new.name!r} created: edit its rules, replay it, then publish.")
        return HttpResponseRedirect(reverse("admin:routing_ruleset_change", args=[new.pk]))

    def get_urls(self):  # type: ignore[no-untyped-def]
        view = self.admin_site.admin_view
        extra = [
            path("<int:pk>/replay/", view(self.replay_view), name="routing_ruleset_replay"),
            path("<int:pk>/publish/", view(self.publish_view), name="routing_ruleset_publish"),
            path("<int:pk>/copy/", view(self.copy_view), name="routing_ruleset_copy"),
            path("rollback/", view(self.rollback_view), name="routing_ruleset_rollback"),
        ]
        return extra + super().get_urls()

    def replay_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        rule_set = get_object_or_404(RuleSet, pk=pk)
        form = ReplayForm(request.GET if "limit" in request.GET else None)
        report = replay.replay(draft_id=pk, limit=form.cleaned_data["limit"]) if form.is_valid() else None
        context = {
            **self.admin_site.each_context(request),
            "title": f"Replay “{rule_set.name}” against the live rules",
            "rule_set": rule_set,
            "form": form,
            "report": report,
            "published": rulesets.published(),
            "assumed_output": replay.ASSUMED_OUTPUT_TOKENS,
            "can_publish": rule_set.status == RuleSet.Status.DRAFT and super().has_change_permission(request),
            "limit": form.cleaned_data["limit"] if report else None,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/routing/replay.html", context)

    def publish_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """GET: the confirmation page (rule diff, the replay's model mix and cost change); POST: publish."""
        if not super().has_change_permission(request):
            raise PermissionDenied
        rule_set = get_object_or_404(RuleSet, pk=pk)
        if rule_set.status != RuleSet.Status.DRAFT:
            self.message_user(request, f"Only a draft can be published; this one is {rule_set.status}.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:routing_ruleset_change", args=[pk]))
        form = PublishForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            return self._publish(request, pk)
        limit_form = ReplayForm(request.GET if "limit" in request.GET else {"limit": 500})
        limit = limit_form.cleaned_data["limit"] if limit_form.is_valid() else 500
        live = rulesets.published()
        context = {
            **self.admin_site.each_context(request),
            "title": f"Publish “{rule_set.name}”?",
            "rule_set": rule_set,
            "live": live,
            "form": form,
            "changes": rulesets.diff(live_id=live.pk if live else None, draft_id=pk),
            "report": replay.replay(draft_id=pk, limit=limit),
            "limit": limit,
            "assumed_output": replay.ASSUMED_OUTPUT_TOKENS,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/routing/publish_confirm.html", context)

    def _publish(self, request: HttpRequest, pk: int) -> HttpResponse:
        try:
            published = rulesets.publish(rule_set_id=pk)
        except RoutingError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(
                request, f"{published.name!r} is now live in every process within seconds.", messages.SUCCESS
            )
        return HttpResponseRedirect(reverse("admin:routing_ruleset_changelist"))

    def copy_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST" or not super().has_change_permission(request):
            raise PermissionDenied
        return self._copy(request, pk) or HttpResponseRedirect(reverse("admin:routing_ruleset_changelist"))

    def rollback_view(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST" or not super().has_change_permission(request):
            raise PermissionDenied
        try:
            restored = rulesets.rollback()
        except RoutingError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, f"Rolled back: {restored.name!r} is live again.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:routing_ruleset_changelist"))


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    form = RoutingRuleForm
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

    def has_change_permission(self, request: HttpRequest, obj: RoutingRule | None = None) -> bool:
        if obj is not None and not _editable(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: RoutingRule | None = None) -> bool:
        if obj is not None and not _editable(obj):
            return False
        return super().has_delete_permission(request, obj)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        draft = rulesets.draft()
        if draft is not None and "rule_set" not in initial:
            initial["rule_set"] = draft.pk
        return initial

    def get_changelist_formset(self, request: HttpRequest, **kwargs: Any) -> Any:
        """Priority and enabled are editable in the list for draft rules only; the others show as text."""
        base = super().get_changelist_formset(request, **kwargs)

        class DraftOnlyFormSet(base):  # type: ignore[misc, valid-type]
            def _construct_form(self, i: int, **kw: Any) -> Any:
                form = super()._construct_form(i, **kw)
                if form.instance.pk and not _editable(form.instance):
                    for field in form.fields.values():
                        field.disabled = True
                return form

        return DraftOnlyFormSet

    def get_urls(self):  # type: ignore[no-untyped-def]
        extra = [path("try/", self.admin_site.admin_view(self.try_view), name="routing_routingrule_try")]
        return extra + super().get_urls()

    def try_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        initial = {"rule_set": request.GET.get("rule_set")} if request.GET.get("rule_set") else None
        form = TryItForm(request.POST or None, initial=initial)
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
    list_display = ["created_at", "principal", "requested_model", "model_id", "mode", "short_reason", "prompt"]
    list_filter = ["mode", "model_id", "classifier_label", "principal_kind", "interactive", "created_at"]
    search_fields = ["reason", "requested_model", "model_id", "rule_name", "message_excerpt"]
    date_hierarchy = "created_at"
    readonly_fields = ["elapsed"]
    exclude = ["elapsed_ms"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[RoutingDecision]:
        return selectors.with_principal_names(super().get_queryset(request))

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        # Each word may match any field (Django's search), or the whole term a user's or key's name.
        found, duplicates = super().get_search_results(request, queryset, search_term)
        return found | principal_search(queryset, search_term), duplicates

    @admin.display(description="principal", ordering="principal_id")
    def principal(self, obj: RoutingDecision) -> str:
        return selectors.principal_link(obj)

    @admin.display(description="reason", ordering="reason")
    def short_reason(self, obj: RoutingDecision) -> str:
        text = obj.reason if len(obj.reason) <= 70 else obj.reason[:69] + "…"
        return format_html('<span class="nowrap" title="{}">{}</span>', obj.reason, text)

    @admin.display(description="prompt")
    def prompt(self, obj: RoutingDecision) -> str:
        text = obj.message_excerpt.replace("\n", " ")
        return text if len(text) <= 60 else text[:59] + "…"

    @admin.display(description="time taken")
    def elapsed(self, obj: RoutingDecision) -> str:
        return f"{obj.elapsed_ms:.1f} ms"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # an audit trail, and the replay's input
