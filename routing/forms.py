"""Admin forms: the "Try it" sandbox and the replay size."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from claudeapp.accounts.principals import Principal
from routing.models import Mode, RuleSet
from routing.rulechecks import parse_tags
from routing.services import RouteRequest


class TryItForm(forms.Form):
    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 8, "cols": 90}))
    requested_model = forms.CharField(initial="auto", help_text="'auto', a model id or an alias.")
    principal_kind = forms.ChoiceField(choices=[("user", "User"), ("partner_key", "Partner key")], initial="user")
    user = forms.ModelChoiceField(queryset=get_user_model().objects.order_by("username"), required=False)
    groups = forms.ModelMultipleChoiceField(queryset=Group.objects.all(), required=False)
    partner_key_id = forms.IntegerField(required=False, min_value=1)
    metadata = forms.CharField(required=False, help_text="key=value pairs, e.g. bulk=true")
    input_tokens = forms.IntegerField(required=False, min_value=0, help_text="Blank: estimated from the prompt.")
    previous_model = forms.CharField(required=False, help_text="The conversation's last model (stickiness).")
    mode = forms.ChoiceField(choices=[(Mode.SYNC, "sync"), (Mode.QUEUE, "queue")], initial=Mode.SYNC)
    interactive = forms.BooleanField(required=False, initial=True, help_text="Someone waits: no batch.")
    rule_set = forms.ModelChoiceField(
        queryset=RuleSet.objects.all(), required=False, help_text="Blank: the published rule set."
    )

    def clean_metadata(self) -> dict[str, str]:
        try:
            return dict(parse_tags(self.cleaned_data["metadata"] or ""))
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def route_request(self) -> RouteRequest:
        data = self.cleaned_data
        user = data["user"]
        group_ids = {g.pk for g in data["groups"]} | (set(user.groups.values_list("pk", flat=True)) if user else set())
        if data["principal_kind"] == "partner_key":
            principal = Principal(
                "partner_key", data["partner_key_id"] or 0, user.pk if user else 0, frozenset(group_ids)
            )
        else:
            principal = Principal("user", user.pk if user else 0, user.pk if user else 0, frozenset(group_ids))
        return RouteRequest(
            principal=principal,
            requested_model=data["requested_model"],
            messages=[{"role": "user", "content": data["prompt"]}],
            metadata=data["metadata"],
            estimated_input_tokens=data["input_tokens"],
            previous_model=data["previous_model"] or None,
            interactive=data["interactive"],
            mode=data["mode"],
        )


class ReplayForm(forms.Form):
    limit = forms.IntegerField(initial=500, min_value=1, max_value=20_000, help_text="Most recent decisions.")
