"""Writes to conversations. The chat turn itself (which calls Claude) lives in turns.py."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from claudeapp.conversations import branches, instructions, selectors
from claudeapp.conversations.errors import InvalidTurn
from claudeapp.conversations.models import Conversation, Message

TITLE_LENGTH = 60


def title_from(text: str) -> str:
    words = " ".join(text.split())
    if len(words) <= TITLE_LENGTH:
        return words or "New chat"
    return words[: TITLE_LENGTH - 1].rsplit(" ", 1)[0] + "…"


def create_conversation(
    *, owner_id: int, model_choice: str = Conversation.AUTO, partner_key_id: int | None = None, title: str = ""
) -> Conversation:
    """A person's new conversation starts with their default instructions (a partner key's with none)."""
    system_prompt = instructions.default_for(owner_id) if partner_key_id is None else ""
    return Conversation.objects.create(
        owner_id=owner_id,
        model_choice=model_choice,
        partner_key_id=partner_key_id,
        title=title[:200],
        system_prompt=system_prompt,
    )


def rename_conversation(*, conversation: Conversation, title: str) -> Conversation:
    conversation.title = title.strip()[:200]
    conversation.save(update_fields=["title", "updated_at"])
    return conversation


def set_model_choice(*, conversation: Conversation, model_choice: str) -> Conversation:
    conversation.model_choice = model_choice
    conversation.save(update_fields=["model_choice", "updated_at"])
    return conversation


def delete_conversation(*, conversation: Conversation) -> None:
    conversation.delete()


@transaction.atomic
def start_turn(*, conversation: Conversation, user_text: str, model_requested: str) -> tuple[Message, Message]:
    """Save the user's message and an assistant placeholder before any upstream call, at the end of
    the branch on screen.

    Whatever happens upstream afterwards, the user's message is never lost.
    """
    leaf_id = _locked(conversation).active_leaf_id
    if leaf_id is None:  # rows from before the tree (or written by hand): follow the newest message
        leaf_id = conversation.messages.order_by("-created_at", "-id").values_list("pk", flat=True).first()
    return _new_turn(conversation, parent_id=leaf_id, user_text=user_text, model_requested=model_requested)


@transaction.atomic
def start_edit(
    *, conversation: Conversation, message_id: str, user_text: str, model_requested: str
) -> tuple[Message, Message]:
    """An edited question: a sibling of the original under the same parent, answered afresh. The
    original and everything after it stay, as a branch that can be switched back to."""
    _locked(conversation)
    original = _own_message(conversation, message_id, role=Message.Role.USER, field="edit_of")
    return _new_turn(conversation, parent_id=original.parent_id, user_text=user_text, model_requested=model_requested)


@transaction.atomic
def start_regenerate(*, conversation: Conversation, message_id: str, model_requested: str) -> tuple[Message, Message]:
    """A new answer to the same question (same or another model), beside the earlier ones.

    Returns the question and the new answer's placeholder.
    """
    _locked(conversation)
    earlier = _own_message(conversation, message_id, role=Message.Role.ASSISTANT, field="regenerate")
    if earlier.status in (Message.Status.PENDING, Message.Status.STREAMING):
        raise InvalidTurn("This answer is still being written; stop it or wait for it first.", field="regenerate")
    question = earlier.parent if earlier.parent_id else question_before(earlier)
    if question is None:
        raise InvalidTurn("This answer has no question to answer again.", field="regenerate")
    answer = Message.objects.create(
        conversation=conversation,
        parent=question,
        role=Message.Role.ASSISTANT,
        status=Message.Status.PENDING,
        model_requested=model_requested,
    )
    _set_leaf(conversation, answer)
    return question, answer


@transaction.atomic
def switch_branch(*, conversation: Conversation, message_id: str) -> Message:
    """Show another version of a message: the branch under it, down to its newest end, becomes active."""
    _locked(conversation)
    top = _own_message(conversation, message_id, role=None, field="message")
    leaf = branches.newest_leaf_under(list(conversation.messages.order_by("created_at", "id")), top)
    _set_leaf(conversation, leaf)
    return leaf


def show_message(*, conversation: Conversation, message_id: str) -> None:
    """Make a message visible (a search hit): when it is not on the active path, switch to its branch.
    An id that names no message of this conversation changes nothing."""
    if any(str(m.public_id) == message_id for m in selectors.active_path(conversation)):
        return
    try:
        switch_branch(conversation=conversation, message_id=message_id)
    except InvalidTurn:
        return


def _new_turn(
    conversation: Conversation, *, parent_id: int | None, user_text: str, model_requested: str
) -> tuple[Message, Message]:
    user_message = Message.objects.create(
        conversation=conversation,
        parent_id=parent_id,
        role=Message.Role.USER,
        content=user_text,
        model_requested=model_requested,
    )
    answer = Message.objects.create(
        conversation=conversation,
        parent=user_message,
        role=Message.Role.ASSISTANT,
        status=Message.Status.PENDING,
        model_requested=model_requested,
    )
    if not conversation.title:
        conversation.title = title_from(user_text)
    _set_leaf(conversation, answer)
    return user_message, answer


def _locked(conversation: Conversation) -> Conversation:
    """Turns of one conversation start one at a time, so two never take the same leaf unknowingly."""
    return Conversation.objects.select_for_update().only("pk", "active_leaf_id").get(pk=conversation.pk)


def _set_leaf(conversation: Conversation, leaf: Message) -> None:
    conversation.active_leaf = leaf
    conversation.save(update_fields=["active_leaf", "title", "updated_at"])


def _own_message(conversation: Conversation, public_id: str, *, role: str | None, field: str) -> Message:
    rows = conversation.messages.filter(role=role) if role else conversation.messages.all()
    try:
        return rows.get(public_id=public_id)
    except (Message.DoesNotExist, ValueError, ValidationError) as exc:
        raise InvalidTurn("No such message in this conversation.", field=field) from exc


def question_before(answer: Message) -> Message | None:
    return (
        answer.conversation.messages.filter(role=Message.Role.USER, created_at__lte=answer.created_at)
        .order_by("-created_at", "-id")
        .first()
    )
