"""Pagination and filtering shared by the API's list endpoints."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response


class ApiCursorPagination(CursorPagination):
    """The one list shape of /api/v1: `{"data": [...], "has_more": bool, "next": url|null, "previous": url|null}`,
    newest first, `?limit=` up to 100, `?cursor=` from `next` / `previous`.

    Cursor (not offset) so pages stay stable while rows are appended, and deep pages cost
    the same as the first. Views set `ordering` when `-created_at` is not right.
    """

    page_size = 20
    page_size_query_param = "limit"
    max_page_size = 100
    ordering = "-created_at"

    def get_paginated_response(self, data: Any) -> Response:
        return Response(page_body(data, next_url=self.get_next_link(), previous_url=self.get_previous_link()))

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return page_schema(schema)

    def get_page_size(self, request: Any) -> int:
        # A bad ?limit= is a 400 naming it, not silently the default page (DRF's own behaviour).
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (raw.isdigit() and 1 <= int(raw) <= self.max_page_size):
            raise serializers.ValidationError({"limit": [f"Must be an integer from 1 to {self.max_page_size}."]})
        return super().get_page_size(request)


def page_body(data: Any, *, next_url: str | None = None, previous_url: str | None = None) -> dict[str, Any]:
    """A list in the one shape, also for short lists that are never paged (e.g. models)."""
    return {"data": data, "has_more": next_url is not None, "next": next_url, "previous": previous_url}


def page_schema(schema: dict[str, Any]) -> dict[str, Any]:
    link = {"type": "string", "format": "uri", "nullable": True}
    return {
        "type": "object",
        "required": ["data", "has_more", "next", "previous"],
        "properties": {"data": schema, "has_more": {"type": "boolean"}, "next": link, "previous": link},
    }


# Any moment a filter may name: wide enough for every real query, narrow enough that a day either
# side, or a conversion to any time zone, stays inside what Python and Postgres can represent.
EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
OUT_OF_RANGE = "Out of range: dates from 1900-01-01 to 9998-12-31."


def _parse_moment(name: str, raw: str, *, end_of_day: bool) -> dt.datetime:
    try:
        day = parse_date(raw)
        moment = parse_datetime(raw) if day is None else None
    except ValueError:  # well-formed but impossible, e.g. 2026-02-30
        day = moment = None
    try:
        if day is not None:  # a bare date means the whole day
            moment = dt.datetime.combine(day + dt.timedelta(days=1 if end_of_day else 0), dt.time())
        if moment is not None:
            moment = (moment.replace(tzinfo=dt.UTC) if timezone.is_naive(moment) else moment).astimezone(dt.UTC)
    except OverflowError:  # 9999-12-31 plus its day, or a far offset
        raise serializers.ValidationError({name: [OUT_OF_RANGE]}) from None
    if moment is None:
        raise serializers.ValidationError({name: ["Expected an ISO 8601 date or date-time."]})
    if not EARLIEST <= moment <= LATEST:
        raise serializers.ValidationError({name: [OUT_OF_RANGE]})
    return moment


def filter_date_range(
    queryset: QuerySet[Any],
    params: Mapping[str, str],
    *,
    field: str = "created_at",
    after: str = "created_after",
    before: str = "created_before",
) -> QuerySet[Any]:
    """Apply `?created_after=` (inclusive) and `?created_before=` (exclusive; a bare date includes that day).

    Bad values raise a ValidationError naming the parameter, which the handler turns into a 400.
    """
    start = _parse_moment(after, params[after], end_of_day=False) if params.get(after) else None
    end = _parse_moment(before, params[before], end_of_day=True) if params.get(before) else None
    if start is not None and end is not None and start >= end:
        raise serializers.ValidationError({before: [f"Must be later than {after}."]})
    if start is not None:
        queryset = queryset.filter(**{f"{field}__gte": start})
    if end is not None:
        queryset = queryset.filter(**{f"{field}__lt": end})
    return queryset
