from __future__ import annotations

from django.contrib import admin

from claudeapp.conversations.models import Conversation, Message


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    can_delete = False
    fields = ["role", "status", "short_content", "model_used", "input_tokens", "output_tokens", "cost_micros",
              "routing_reason", "fallback_reason", "created_at"]  # fmt: skip
    readonly_fields = fields

    @admin.display(description="content")
    def short_content(self, obj: Message) -> str:
        return obj.content[:120]

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["title", "owner", "partner_key_id", "model_choice", "last_model", "updated_at"]
    list_filter = ["model_choice", "last_model"]
    search_fields = ["title", "owner__username", "public_id"]
    readonly_fields = ["public_id", "created_at", "updated_at"]
    raw_id_fields = ["owner"]
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["public_id", "role", "status", "model_requested", "model_used", "output_tokens", "cost_micros",
                    "created_at"]  # fmt: skip
    list_filter = ["role", "status", "model_used"]
    search_fields = ["public_id", "upstream_request_id", "upstream_message_id"]
    readonly_fields = [f.name for f in Message._meta.fields]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False
