"""Cursor pagination shared by /v1/models and /v1/messages/batches (limit, after_id, before_id)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from emulator.errors import invalid

T = TypeVar("T")


def paginate(
    items: Sequence[T],
    query: dict[str, str],
    key: Callable[[T], str],
    render: Callable[[T], dict[str, Any]],
    default_limit: int = 20,
) -> dict[str, Any]:
    limit = _limit(query.get("limit"), default_limit)
    ids = [key(item) for item in items]
    after, before = query.get("after_id"), query.get("before_id")
    if after is not None and before is not None:
        raise invalid("after_id and before_id cannot both be set")
    if before is not None:
        end = _position(ids, before)
        start = max(0, end - limit)
        page, has_more = items[start:end], start > 0
    else:
        start = _position(ids, after) + 1 if after is not None else 0
        page, has_more = items[start : start + limit], start + limit < len(items)
    data = [render(item) for item in page]
    return {
        "data": data,
        "has_more": has_more,
        "first_id": key(page[0]) if page else None,
        "last_id": key(page[-1]) if page else None,
    }


def _limit(raw: str | None, default: int) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise invalid("limit: Input should be an integer between 1 and 1000")
    return int(raw)


def _position(ids: list[str], cursor: str) -> int:
    try:
        return ids.index(cursor)
    except ValueError:
        raise invalid(f"Invalid cursor: {cursor}") from None
