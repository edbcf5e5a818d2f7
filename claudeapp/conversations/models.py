from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import models

# Full-text search config: the GIN indexes and the search query must use the same expression.
SEARCH_CONFIG = "english"


class Conversation(models.Model):
    """A chat thread owned by a person (browser) or a partner key (REST API)."""

    AUTO = "auto"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    partner_key_id = models.BigIntegerField(
        null=True, blank=True, db_index=True, help_text="Set when a partner key created it; only that key sees it."
    )
    title = models.CharField(max_length=200, blank=True)
    model_choice = models.CharField(max_length=100, default=AUTO, help_text="'auto', an alias or a model id.")
    last_model = models.CharField(
        max_length=100, blank=True, help_text="Model that answered last; keeps the prompt cache warm."
    )
    system_prompt = models.TextField(blank=True, help_text="Instructions sent as `system` with every turn.")
    active_leaf = models.ForeignKey(
        "Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Last message of the branch on screen; the path to it is the context sent upstream.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [
            models.Index(fields=["owner", "partner_key_id", "-updated_at"]),
            GinIndex(SearchVector("title", config=SEARCH_CONFIG), name="conversation_title_fts"),
        ]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.public_id}"


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # saved, answer not started
        STREAMING = "streaming", "Streaming"
        COMPLETE = "complete", "Complete"
        TRUNCATED = "truncated", "Truncated"  # the stream broke after tokens went out
        FAILED = "failed", "Failed"
        QUEUED = "queued", "Queued"  # no model could answer now: a job will

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    # The message this one follows. An edit is a second user message under the same parent, a regenerated
    # answer a second answer under the same question: siblings are the branches, and every one is kept.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField(blank=True)
    thinking = models.TextField(blank=True, help_text="The model's (summarised) thinking, when it thought.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.COMPLETE)
    model_requested = models.CharField(max_length=100, blank=True)
    model_used = models.CharField(max_length=100, blank=True)
    stop_reason = models.CharField(max_length=40, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0)
    cost_micros = models.BigIntegerField(default=0)
    upstream_request_id = models.CharField(max_length=100, blank=True)
    upstream_message_id = models.CharField(max_length=100, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    routing_reason = models.CharField(max_length=300, blank=True)
    routing_decision = models.ForeignKey(
        "routing.RoutingDecision", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    fallback_reason = models.CharField(max_length=300, blank=True)
    error_type = models.CharField(max_length=60, blank=True)
    error_message = models.TextField(blank=True)
    job_id = models.UUIDField(null=True, blank=True, help_text="Job answering this turn later, if queued.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["conversation", "created_at"]),
            GinIndex(SearchVector("content", config=SEARCH_CONFIG), name="message_content_fts"),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"


class ChatPreferences(models.Model):
    """A person's chat defaults: the instructions a new conversation starts with."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="chat_preferences"
    )
    default_system_prompt = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "chat preferences"

    def __str__(self) -> str:
        return f"Chat preferences of user {self.user_id}"
