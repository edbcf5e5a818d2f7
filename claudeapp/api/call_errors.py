"""How the message endpoints answer what a billed call can raise: routing, billing and gateway errors.

Registered with the API's error registry (so DRF views agree); `describe_call_error` adds the
cases only the message endpoints meet.
"""

from __future__ import annotations

import logging

from billing.errors import PriceMissing
from claudeapp.api.errors import ErrorInfo, describe, register_error, retry_after_headers
from claudeapp.calls.errors import MaxTokensTooLarge, UpstreamBusy
from claudeapp.claude.errors import NoModelAvailable, UpstreamBadRequest, UpstreamError, UpstreamNotFound
from routing.errors import ModelDisabled, UnknownModel

log = logging.getLogger(__name__)


def _unknown_model(exc: UnknownModel | ModelDisabled) -> str:
    return f"model: {exc.name!r} is not a model this gateway serves."


register_error(
    UpstreamBusy,
    429,
    "rate_limit_error",
    lambda e: "The gateway is at its upstream rate limit for this model; retry later.",
    headers_fn=lambda e: retry_after_headers(e.retry_after_seconds),
)
register_error(UnknownModel, 404, "not_found_error", _unknown_model)
# A disabled model is served here, just not now: 400 naming it as disabled, with what to use instead.
register_error(
    ModelDisabled,
    400,
    "invalid_request_error",
    lambda e: (
        f"model: {e.name!r} is disabled on this gateway"
        + (f"; use {', '.join(e.alternatives)} instead." if e.alternatives else ".")
    ),
)
# Upstream refused the request itself (every model would): the caller's body is at fault.
register_error(
    UpstreamBadRequest, 400, "invalid_request_error", lambda e: f"Upstream rejected the request: {e.message}"
)
register_error(UpstreamNotFound, 404, "not_found_error", lambda e: f"Upstream: {e.message}")
# Anything else upstream said that was not retried away (e.g. our own upstream credentials): not the caller's fault.
register_error(UpstreamError, 502, "api_error", lambda e: "The upstream API failed; retry later.")


def describe_call_error(exc: BaseException, *, anthropic: bool = False) -> ErrorInfo:
    if isinstance(exc, PriceMissing):
        # An operator has not priced this model yet. Refuse rather than bill $0; the caller may pick another.
        log.warning("refused a call to unpriced model %s", exc.model_id)
        return ErrorInfo(400, "invalid_request_error", f"model: {exc.model_id} cannot be used yet.", "model")
    if isinstance(exc, MaxTokensTooLarge):
        return ErrorInfo(400, "invalid_request_error", str(exc), "max_tokens")
    if isinstance(exc, NoModelAvailable) and anthropic:
        # 529 is what Anthropic answers when overloaded: the SDK raises its OverloadedError.
        headers = retry_after_headers(exc.retry_after or 1.0)
        return ErrorInfo(529, "overloaded_error", "No model is available right now; retry later.", headers=headers)
    return describe(exc)
