"""The message tree of a conversation, read in memory from its messages (one query, done by the caller).

Each message points at the one it follows (`parent`). Editing a question adds a sibling question under
the same parent; regenerating an answer adds a sibling answer under the same question. The branch on
screen, and the only one sent upstream as context, is the path from a root to the conversation's
active leaf.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from claudeapp.conversations.models import Message


@dataclass(frozen=True)
class Branches:
    """Where a message stands among its siblings (1-based), with its neighbours' ids to switch to."""

    index: int
    count: int
    previous_id: str | None
    next_id: str | None


@dataclass(frozen=True)
class ThreadItem:
    message: Message
    branches: Branches | None  # None when the message has no siblings


def path_to(messages: Sequence[Message], leaf_id: int | None) -> list[Message]:
    """Root-to-leaf path of `leaf_id` among `messages` (ordered by created_at, id).

    With no leaf the newest message is the leaf, and messages that have no parents at all (rows
    written before the tree, or by hand) read as the one linear chain they were.
    """
    if not messages:
        return []
    by_id = {m.pk: m for m in messages}
    if leaf_id not in by_id:
        if not any(m.parent_id for m in messages):
            return list(messages)
        leaf_id = messages[-1].pk
    path: list[Message] = []
    node: Message | None = by_id[leaf_id]
    while node is not None and len(path) <= len(messages):  # the bound guards against a cycle in bad data
        path.append(node)
        node = by_id.get(node.parent_id) if node.parent_id else None
    path.reverse()
    return path


def children_by_parent(messages: Sequence[Message]) -> dict[int | None, list[Message]]:
    children: dict[int | None, list[Message]] = defaultdict(list)
    for message in messages:  # already in creation order, so siblings are numbered oldest first
        children[message.parent_id].append(message)
    return children


def thread(messages: Sequence[Message], leaf_id: int | None) -> list[ThreadItem]:
    """The active path, each message with its place among its siblings."""
    path = path_to(messages, leaf_id)
    if path and not any(m.parent_id for m in messages):
        return [ThreadItem(m, None) for m in path]  # one linear chain: no branches anywhere
    children = children_by_parent(messages)
    return [ThreadItem(m, _branches(m, children[m.parent_id])) for m in path]


def _branches(message: Message, siblings: list[Message]) -> Branches | None:
    siblings = [s for s in siblings if s.role == message.role]
    if len(siblings) < 2:
        return None
    index = next(i for i, s in enumerate(siblings) if s.pk == message.pk)
    return Branches(
        index=index + 1,
        count=len(siblings),
        previous_id=str(siblings[index - 1].public_id) if index > 0 else None,
        next_id=str(siblings[index + 1].public_id) if index + 1 < len(siblings) else None,
    )


def newest_leaf_under(messages: Sequence[Message], top: Message) -> Message:
    """Where switching to `top` lands: down its newest child at each step, to the end of that branch."""
    children = children_by_parent(messages)
    node = top
    while children.get(node.pk):
        node = children[node.pk][-1]
    return node
