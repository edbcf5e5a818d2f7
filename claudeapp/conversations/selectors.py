"""Reads of conversations, always scoped to their owner (someone else's id is a 404)."""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from claudeapp.conversations.models import Conversation, Message


def conversations_for(*, owner_id: int, partner_key_id: int | None = None) -> QuerySet[Conversation]:
    return Conversation.objects.filter(owner_id=owner_id, partner_key_id=partner_key_id)


def get_conversation(*, owner_id: int, public_id: uuid.UUID | str, partner_key_id: int | None = None) -> Conversation:
    try:
        return conversations_for(owner_id=owner_id, partner_key_id=partner_key_id).get(public_id=public_id)
    except (Conversation.DoesNotExist, ValueError, TypeError, ValidationError) as exc:  # malformed id: "not yours"
        raise Http404("No such conversation") from exc


def messages_of(conversation: Conversation) -> QuerySet[Message]:
    return conversation.messages.order_by("created_at", "id")
