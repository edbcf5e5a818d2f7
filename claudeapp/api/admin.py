"""Partner keys in the console: the raw key is shown exactly once, after add or rotate; the hash never."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from claudeapp.api import keys
from claudeapp.api.models import PartnerKey, Scope


class PartnerKeyAddForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, initial=Scope.values, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = PartnerKey
        fields = ["name", "owner", "scopes", "expires_at", "rotation_grace_seconds"]


class PartnerKeyChangeForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple, required=False)

    class Meta:
        model = PartnerKey
        fields = ["name", "scopes", "expires_at", "rotation_grace_seconds"]


def _show_once(request: HttpRequest, verb: str, key: PartnerKey, raw: str) -> None:
    messages.warning(
        request,
        format_html(
            "{} key “{}”. Copy it now, it will not be shown again: <code class='partner-key'>{}</code>"
            " Webhook signing secret: <code class='webhook-secret'>{}</code>",
            verb,
            key.name,
            raw,
            keys.webhook_secret(key=key).secret,
        ),
    )


@admin.register(PartnerKey)
class PartnerKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "masked", "scope_list", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_filter = ["revoked_at", "expires_at"]
    search_fields = ["name", "prefix", "owner__username"]
    list_select_related = ["owner"]
    readonly_fields = ["owner", "masked", "created_at", "last_used_at", "rotated_at", "previous_valid_until",
                       "revoked_at"]  # fmt: skip
    actions = ["revoke", "rotate"]

    @admin.display(description="key")
    def masked(self, obj: PartnerKey) -> str:
        return obj.masked

    @admin.display(description="scopes")
    def scope_list(self, obj: PartnerKey) -> str:
        return ", ".join(obj.scopes)

    def get_form(self, request: HttpRequest, obj: PartnerKey | None = None, **kwargs: Any) -> Any:
        kwargs["form"] = PartnerKeyAddForm if obj is None else PartnerKeyChangeForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: PartnerKey | None = None) -> list[str]:
        return [] if obj is None else self.readonly_fields

    def get_fields(self, request: HttpRequest, obj: PartnerKey | None = None) -> list[str]:
        if obj is None:
            return ["name", "owner", "scopes", "expires_at", "rotation_grace_seconds"]
        return ["name", "owner", "masked", "scopes", "expires_at", "rotation_grace_seconds", "created_at",
                "last_used_at", "rotated_at", "previous_valid_until", "revoked_at"]  # fmt: skip

    def save_model(self, request: HttpRequest, obj: PartnerKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            keys.invalidate_cached(key=obj)  # scope or expiry edits apply at once
            return
        data = form.cleaned_data
        key, raw = keys.create_key(
            owner=data["owner"],
            name=data["name"],
            scopes=data["scopes"],
            expires_at=data["expires_at"],
            rotation_grace_seconds=data.get("rotation_grace_seconds"),
        )
        for model_field in PartnerKey._meta.concrete_fields:  # the admin's message and redirect use `obj`
            setattr(obj, model_field.attname, getattr(key, model_field.attname))
        _show_once(request, "Created", key, raw)

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[PartnerKey]) -> None:
        live = list(queryset.filter(revoked_at__isnull=True))
        canceled = sum(keys.revoke_key(key=key) for key in live)
        self.message_user(
            request, f"Revoked {len(live)} key(s); canceled {canceled} job(s) they had queued.", messages.SUCCESS
        )

    @admin.action(description="Rotate selected keys (new key shown once; the old one works for its grace period)")
    def rotate(self, request: HttpRequest, queryset: QuerySet[PartnerKey]) -> None:
        for key in queryset.filter(revoked_at__isnull=True).select_related("owner"):
            new_key, raw = keys.rotate_key(key=key)
            _show_once(request, "Rotated", new_key, raw)
