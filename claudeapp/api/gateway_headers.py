"""The gateway's own request and response headers on /anthropic (docs/api.md, "Gateway headers").

Request:  `x-gateway-retries: 0`  one upstream attempt on the routed model: no gateway retry and
                                 no fallback to another model, for callers that retry themselves.
Response: `x-gateway-fallback-from: <model>`  the model asked first, when another one answered;
          `x-gateway-fallback-reason`         why each model before it did not;
          `anthropic-ratelimit-*`             the tightest of the key's limits and upstream's;
          `x-route-model`, `x-route-reason`, `x-ratelimit-*` as on every message endpoint.
"""

from __future__ import annotations

from django.http import HttpRequest
from rest_framework import serializers

from claudeapp.api import anthropic_ratelimit
from claudeapp.calls.admission import Admission
from claudeapp.claude.errors import NoModelAvailable, UpstreamError
from claudeapp.claude.results import GatewayResult

RETRIES_HEADER = "x-gateway-retries"
_META_RETRIES = "HTTP_X_GATEWAY_RETRIES"


def direct(request: HttpRequest) -> bool:
    """True when the caller turned gateway retries and fallback off (`x-gateway-retries: 0`)."""
    value = request.META.get(_META_RETRIES)
    if value is None:
        return False
    if value.strip() != "0":
        raise serializers.ValidationError({RETRIES_HEADER: ["Only 0 is accepted (turns gateway retries off)."]})
    return True


def for_reply(admission: Admission, result: GatewayResult) -> dict[str, str]:
    limits = anthropic_ratelimit.headers(admission.ticket.headers(), result.ratelimit_headers)
    headers = {**admission.headers(), **limits}
    headers.update(_fallback(admission, result.model_used, result.fallback_reason))
    return headers


def for_stream(admission: Admission, answered_by: str | None) -> dict[str, str]:
    """Headers go out before the first event: the model is known by then (the gateway holds events
    back until the first delta), upstream's own limits are not."""
    headers = {**admission.headers(), **anthropic_ratelimit.headers(admission.ticket.headers())}
    if answered_by is not None:
        headers.update(_fallback(admission, answered_by, None))
    return headers


def for_error(admission: Admission | None, exc: BaseException) -> dict[str, str]:
    """On an upstream error (a 429 above all): upstream's `anthropic-ratelimit-*` from that error reply,
    tightest-of with the key's own limits, so a client pacing itself sees why it was refused. Nothing
    for errors upstream did not send (our own refusals carry their own headers)."""
    upstream = exc.last_error if isinstance(exc, NoModelAvailable) else exc
    if not isinstance(upstream, UpstreamError) or not upstream.ratelimit_headers:
        return {}
    own = admission.ticket.headers() if admission is not None else {}
    return anthropic_ratelimit.headers(own, upstream.ratelimit_headers)


def _fallback(admission: Admission, model_used: str, reason: str | None) -> dict[str, str]:
    first = admission.models[0]
    if model_used == first:
        return {}
    headers = {"x-gateway-fallback-from": first}
    if reason:
        headers["x-gateway-fallback-reason"] = _header_safe(reason)
    return headers


def _header_safe(text: str) -> str:
    return "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)[:300]
