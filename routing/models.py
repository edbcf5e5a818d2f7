from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from routing import rulechecks


class Model(models.Model):
    """One Claude model the gateway may call: the operator-edited model map."""

    class Family(models.TextChoices):
        HAIKU = "haiku", "Haiku"
        SONNET = "sonnet", "Sonnet"
        OPUS = "opus", "Opus"
        FABLE = "fable", "Fable"
        MYTHOS = "mythos", "Mythos"
        OTHER = "other", "Other"

    model_id = models.CharField(max_length=100, unique=True, help_text="The id sent to the Messages API.")
    display_name = models.CharField(max_length=100)
    family = models.CharField(max_length=20, choices=Family.choices)
    enabled = models.BooleanField(default=True)
    context_window = models.PositiveIntegerField(default=200_000)
    max_output_tokens = models.PositiveIntegerField(default=64_000)
    fallback = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="fallback_for",
        help_text="Model tried next when this one is overloaded or its circuit is open.",
    )
    retires_on = models.DateField(null=True, blank=True, help_text="Anthropic's announced retirement date.")
    sort_order = models.PositiveIntegerField(default=100, help_text="Lower comes first in pickers.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sort_order", "model_id"]

    def __str__(self) -> str:
        return self.model_id


class ModelAlias(models.Model):
    """A name callers may use instead of a model id: the tiers simple/moderate/complex, or any other."""

    name = models.SlugField(max_length=50, unique=True)
    model = models.ForeignKey(Model, on_delete=models.PROTECT, related_name="aliases")
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "model aliases"

    def __str__(self) -> str:
        return f"{self.name} -> {self.model.model_id}"


class Mode(models.TextChoices):
    SYNC = "sync", "Sync (answer in the request)"
    QUEUE = "queue", "Queue (durable job)"
    BATCH = "batch", "Batch (Message Batches API, 50% off, up to 24 h)"


class RuleSet(models.Model):
    """A versioned set of routing rules. One is published (live); at most one draft is being edited.

    Operators copy the published set into a draft, edit it, replay it over recent decisions to
    see how the model mix and cost would move, then publish it; the old set is archived.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        ARCHIVED = "archived", "Archived"

    name = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status__in=["draft", "published"]),
                name="routing_ruleset_one_draft_one_published",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class RoutingRule(models.Model):
    """One rule: conditions that must all hold (blank = any), and what to do when they do.

    The action picks a model (a model id or alias), or asks the classifier, or neither (the
    default model choice stands), and may set the mode, e.g. "bulk -> batch on the simple tier".
    """

    rule_set = models.ForeignKey(RuleSet, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(max_length=100)
    priority = models.PositiveIntegerField(default=100, help_text="Lower is evaluated first; first match wins.")
    enabled = models.BooleanField(default=True)
    description = models.CharField(max_length=300, blank=True)
    # Conditions
    principal_kind = models.CharField(
        max_length=20, blank=True, choices=[("user", "User"), ("partner_key", "Partner key")]
    )
    group = models.ForeignKey(
        "auth.Group", null=True, blank=True, on_delete=models.PROTECT, help_text="Principal is in this group."
    )
    # An id, not a foreign key: the api package owns partner keys and depends on routing, not the reverse.
    partner_key_id = models.PositiveBigIntegerField(null=True, blank=True)
    requested_model = models.CharField(
        max_length=100, blank=True, help_text="'auto', a model id or an alias; matches the name or the model it means."
    )
    min_input_tokens = models.PositiveIntegerField(null=True, blank=True)
    max_input_tokens = models.PositiveIntegerField(null=True, blank=True)
    message_regex = models.CharField(
        max_length=500, blank=True, help_text="Python regex searched in the last user message (first 2,000 chars)."
    )
    metadata_tags = models.CharField(
        max_length=300, blank=True, help_text="Request metadata that must match, e.g. 'bulk=true, team=legal'."
    )
    # Action
    target = models.CharField(max_length=100, blank=True, help_text="Model id or alias to route to.")
    classify = models.BooleanField(default=False, help_text="Ask the classifier (Haiku) to pick the tier.")
    mode = models.CharField(max_length=10, blank=True, choices=Mode.choices, help_text="Blank = the caller's mode.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["rule_set", "priority", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~(models.Q(classify=True) & ~models.Q(target="")),
                name="routing_rule_target_or_classify",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = rulechecks.field_errors(self)
        target = self.target.strip()
        if target and not self._target_exists(target):
            errors["target"] = f"No model or alias named {target!r}."
        if errors:
            raise ValidationError(errors)

    @staticmethod
    def _target_exists(target: str) -> bool:
        model_id = ModelAlias.objects.filter(name=target).values_list("model__model_id", flat=True).first() or target
        return Model.objects.filter(model_id=model_id).exists()


class RoutingDecision(models.Model):
    """Audit row for one routing decision, with the features it used so a draft rule set can be replayed."""

    principal_kind = models.CharField(max_length=20)
    principal_id = models.BigIntegerField()
    group_ids = models.JSONField(default=list)
    requested_model = models.CharField(max_length=100)
    previous_model = models.CharField(max_length=100, blank=True)
    interactive = models.BooleanField(default=True)
    requested_mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.SYNC)
    input_tokens = models.PositiveIntegerField(default=0)
    message_excerpt = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    rule = models.ForeignKey(RoutingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rule_name = models.CharField(max_length=100, blank=True)
    classifier_label = models.CharField(max_length=10, blank=True)
    classifier_confidence = models.FloatField(null=True, blank=True)
    classifier_cached = models.BooleanField(default=False)
    classifier_input_tokens = models.PositiveIntegerField(default=0)
    classifier_output_tokens = models.PositiveIntegerField(default=0)
    model_id = models.CharField(max_length=100)
    mode = models.CharField(max_length=10, choices=Mode.choices)
    reason = models.CharField(max_length=300)
    elapsed_ms = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["principal_kind", "principal_id", "-created_at"], name="routing_dec_principal")]

    def __str__(self) -> str:
        return f"{self.requested_model} -> {self.model_id} ({self.mode})"
