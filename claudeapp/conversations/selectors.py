"""Reads of conversations, always scoped to their owner (someone else's id is a 404)."""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from claudeapp.conversations import branches
from claudeapp.conversations.models import Conversation, Message


def conversations_for(*, owner_id: int, partner_key_id: int | None = None) -> QuerySet[Conversation]:
    return Conversation.objects.filter(owner_id=owner_id, partner_key_id=partner_key_id)


def get_conversation(*, owner_id: int, public_id: uuid.UUID | str, partner_key_id: int | None = None) -> Conversation:
    try:
        return conversations_for(owner_id=owner_id, partner_key_id=partner_key_id).get(public_id=public_id)
    except (Conversation.DoesNotExist, ValueError, TypeError, ValidationError) as exc:  # malformed id: "not yours"
        raise Http404("No such conversation") from exc


def messages_of(conversation: Conversation) -> QuerySet[Message]:
    """Every message, all branches included, oldest first."""
    return conversation.messages.order_by("created_at", "id")


def active_path(conversation: Conversation) -> list[Message]:
    """The branch on screen, root to leaf: what the next turn sends upstream as context."""
    return branches.path_to(list(messages_of(conversation)), conversation.active_leaf_id)


def thread(conversation: Conversation) -> list[branches.ThreadItem]:
    """The branch on screen with each message's place among its versions ("2/3")."""
    return branches.thread(list(messages_of(conversation)), conversation.active_leaf_id)


def history_before(conversation: Conversation, answer: Message) -> list[Message]:
    """The messages before `answer`'s question on its branch: the context its question follows."""
    path = branches.path_to(list(messages_of(conversation)), answer.pk)
    return path[:-2] if len(path) >= 2 and path[-1].pk == answer.pk else path[:-1]
