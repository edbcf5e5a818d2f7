"""Admin forms: the "Try it" sandbox and the replay size."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from claudeapp.accounts.principals import Principal
from routing import rulesets
from routing.models import Mode, Model, ModelAlias, RoutingRule, RuleSet
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


def target_choices(current: str = "") -> list[tuple[str, list[tuple[str, str]]] | tuple[str, str]]:
    """Every alias and enabled model, grouped, for a rule's target; the current value stays listed even
    when it no longer names anything (so an old rule opens without losing its target)."""
    aliases = [(a.name, f"{a.name} → {a.model.model_id}") for a in ModelAlias.objects.select_related("model")]
    models = [(m.model_id, f"{m.model_id} ({m.display_name})") for m in Model.objects.filter(enabled=True)]
    choices: list = [("", "— none (classifier or mode only) —"), ("Aliases", aliases), ("Models", models)]
    known = {value for _, group in choices[1:] for value, _ in group}
    if current and current not in known:
        choices.append((current, f"{current} (no longer valid)"))
    return choices


class RoutingRuleForm(forms.ModelForm):
    """A rule of a draft rule set: the target is picked from the model map, never typed."""

    class Meta:
        model = RoutingRule
        fields = [f.name for f in RoutingRule._meta.get_fields() if getattr(f, "editable", False) and f.concrete
                  and not f.auto_created and f.name not in ("created_at", "updated_at")]  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "target" in self.fields:
            current = self.initial.get("target") or (self.instance.target if self.instance else "")
            self.fields["target"].widget = forms.Select(choices=target_choices(current or ""))
        if "requested_model" in self.fields:
            self.fields["requested_model"].widget = forms.Select(choices=_requested_choices(
                self.initial.get("requested_model") or (self.instance.requested_model if self.instance else "")
            ))  # fmt: skip
        if "rule_set" in self.fields:
            field = self.fields["rule_set"]
            field.queryset = RuleSet.objects.filter(status=RuleSet.Status.DRAFT)  # type: ignore[attr-defined]
            field.help_text = "Rules are added to the draft only; publish it (after a replay) to make them live."

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        rule_set = data.get("rule_set") or getattr(self.instance, "rule_set", None)
        if self.instance.pk and not rulesets.is_editable(self.instance.rule_set):
            raise forms.ValidationError("This rule belongs to a published or archived rule set: copy it into a draft.")
        if rule_set is not None and not rulesets.is_editable(rule_set):
            raise forms.ValidationError("Rules are added to the draft rule set only.")
        return data


def _requested_choices(current: str) -> list:
    choices = target_choices("" if current == "auto" else current)
    choices[0] = ("", "— any —")
    return [choices[0], ("auto", "auto (the router decides)"), *choices[1:]]


class PublishForm(forms.Form):
    confirm = forms.BooleanField(required=True, label="I have checked the diff and the replay")
