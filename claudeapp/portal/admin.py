from __future__ import annotations

from django import forms
from django.contrib import admin

from claudeapp.api.models import Scope
from claudeapp.portal.models import KeyAllowance


class KeyAllowanceForm(forms.ModelForm):
    allowed_scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = KeyAllowance
        fields = ["owner", "allowed_scopes", "max_keys"]


@admin.register(KeyAllowance)
class KeyAllowanceAdmin(admin.ModelAdmin):
    form = KeyAllowanceForm
    list_display = ["owner", "max_keys", "scope_list", "updated_at"]
    search_fields = ["owner__username"]
    autocomplete_fields = ["owner"]

    @admin.display(description="allowed scopes")
    def scope_list(self, obj: KeyAllowance) -> str:
        return ", ".join(obj.allowed_scopes)
