"""After the upstream call: bill exactly once, free the limits, learn the org's limits."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from django.db import connection, transaction

from billing import budgets, limits, redisconn
from billing.costs import Usage
from billing.models import LedgerEntry
from billing.upstream import observe_upstream
from claudeapp.calls import inflight
from claudeapp.claude.results import CACHE_SPLIT_KEYS

if TYPE_CHECKING:  # admission gives an admission back through `abandon` when its last step refuses
    from claudeapp.calls.admission import Admission


def settle(
    *,
    admission: Admission,
    usage: Mapping[str, int],
    event_key: str,
    kind: str,
    subject: str,
    model_used: str,
    upstream_request_id: str = "",
    upstream_message_id: str = "",
    ratelimit_headers: Mapping[str, str] | None = None,
) -> LedgerEntry:
    """Bill `usage` at `model_used`'s price (idempotent by event_key) and release the rest of the hold."""
    billed = usage_from_gateway(usage)
    entry = budgets.settle(
        reservation=admission.reservation,
        usage=billed,
        event_key=event_key,
        kind=kind,
        subject=subject,
        upstream_request_id=upstream_request_id or "",
        upstream_message_id=upstream_message_id or "",
        model_id=model_used,
    )
    call_id = inflight.call_id_of(admission)
    deferred = call_id is not None and connection.in_atomic_block
    if deferred:  # the bill is not durable yet: the in-flight record goes once it is
        transaction.on_commit(functools.partial(inflight.done, call_id))
    with redisconn.batch("release rate limits / record upstream limits") as pipe:  # one Redis round trip
        limits.finish(ticket=admission.ticket, usage=_with_classifier(billed, admission.classifier_usage), pipe=pipe)
        if ratelimit_headers:
            observe_upstream(model_id=model_used, headers=ratelimit_headers, pipe=pipe)
        if not deferred:
            inflight.done(call_id, pipe=pipe)
    return entry


def _with_classifier(billed: Usage, classifier: Usage | None) -> Usage:
    """The router's call was the principal's too: its tokens count toward their token limits."""
    if classifier is None:
        return billed
    return replace(
        billed,
        input_tokens=billed.input_tokens + classifier.input_tokens,
        output_tokens=billed.output_tokens + classifier.output_tokens,
    )


def usage_from_gateway(usage: Mapping[str, int]) -> Usage:
    """The gateway flattens the 5m/1h cache-write split; billing reads it nested, as the API sends it."""
    data: dict[str, object] = dict(usage)
    split = {key: data.pop(key) for key in CACHE_SPLIT_KEYS if key in data}
    if split:
        data["cache_creation"] = split
    return Usage.from_anthropic(data)


def abandon(*, admission: Admission) -> None:
    """Nothing was billed upstream: give the budget hold and the limit slot back (the slot and the
    in-flight record even when the database cannot take the hold's release: it raises after them)."""
    try:
        budgets.release(reservation=admission.reservation)
    finally:
        with redisconn.batch("release rate limits / drop the in-flight record") as pipe:  # one Redis round trip
            limits.finish(ticket=admission.ticket, usage=None, pipe=pipe)
            inflight.done(inflight.call_id_of(admission), pipe=pipe)
