from __future__ import annotations

from django.db import models


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
