"""How the message endpoints answer what a billed call can raise: routing, billing and gateway errors.

Registered with the API's error registry (so DRF views agree); `describe_call_error` adds the
cases only the message endpoints meet.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse

from billing.errors import BudgetExceeded, PriceMissing, RateLimited
from claudeapp.api import refusals
from claudeapp.api.errors import TYPE_BY_STATUS, ErrorInfo, describe, register_error, response_for, retry_after_headers
from claudeapp.calls import observe
from claudeapp.calls.errors import LIMIT, REFUSAL_STATUS, MaxTokensTooLarge, UpstreamBusy
from claudeapp.claude.errors import NoModelAvailable, UpstreamBadRequest, UpstreamError, UpstreamNotFound
from routing.errors import ModelDisabled, UnknownModel

log = logging.getLogger(__name__)
# Anthropic's error types (docs: api/errors); anything else upstream says is named by its status.
ANTHROPIC_TYPES = frozenset(
    {
        "invalid_request_error", "authentication_error", "billing_error", "permission_error", "not_found_error",
        "conflict_error", "request_too_large", "rate_limit_error", "api_error", "timeout_error", "overloaded_error",
    }
)  # fmt: skip


def _unknown_model(exc: UnknownModel | ModelDisabled) -> str:
    return f"model: {exc.name!r} is not a model this gateway serves."


def register() -> None:
    """This module's mappings (ApiConfig.ready calls it after errors.register_defaults)."""
    register_error(
        UpstreamBusy,
        REFUSAL_STATUS[LIMIT],  # a refusal like our own limits' (calls/observe.py logs it as one)
        "rate_limit_error",
        lambda e: "The gateway is at its upstream rate limit for this model; retry later.",
        headers_fn=lambda e: retry_after_headers(e.retry_after_seconds),
    )
    register_error(UnknownModel, 404, "not_found_error", _unknown_model, field="model")
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


def answer_call_error(request: HttpRequest, exc: BaseException, *, anthropic: bool = False) -> JsonResponse:
    """The error response of a message endpoint; a call the gateway failed to admit on its own account
    (a 5xx) is logged as a failed call with that status (calls/observe.not_admitted)."""
    info = describe_call_error(exc, anthropic=anthropic)
    observe.not_admitted(exc, http_status=info.status)
    return response_for(request, info)


def describe_call_error(exc: BaseException, *, anthropic: bool = False) -> ErrorInfo:
    if anthropic:
        info = anthropic_call_error(exc)
        if info is not None:
            return info
    if isinstance(exc, PriceMissing):
        # An operator has not priced this model yet. Refuse rather than bill $0; the caller may pick another.
        log.warning("refused a call to unpriced model %s", exc.model_id)
        return ErrorInfo(400, "invalid_request_error", f"model: {exc.model_id} cannot be used yet.", "model")
    if isinstance(exc, MaxTokensTooLarge):
        return ErrorInfo(400, "invalid_request_error", str(exc), "max_tokens")
    return describe(exc)


def anthropic_call_error(exc: BaseException) -> ErrorInfo | None:
    """/anthropic says what upstream said, with its status and type, so the SDK raises the class
    Anthropic itself would have caused; our own refusals use Anthropic's types where one fits."""
    if isinstance(exc, NoModelAvailable):
        if exc.last_error is not None and exc.last_error.status is not None:
            return upstream_error(exc.last_error)  # every model tried failed; the last one says why
        # Every circuit open: 529 is what Anthropic answers when overloaded (the SDK's OverloadedError).
        headers = retry_after_headers(exc.retry_after or 1.0)
        return ErrorInfo(529, "overloaded_error", "No model is available right now; retry later.", headers=headers)
    if isinstance(exc, UpstreamError):
        return upstream_error(exc)
    if isinstance(exc, BudgetExceeded):
        return refusals.budget_refusal(exc)
    if isinstance(exc, RateLimited):
        return refusals.rate_limit_refusal(exc)
    return None


def upstream_error(err: UpstreamError) -> ErrorInfo:
    """An upstream failure as upstream put it: its status, type, message and retry-after."""
    headers = retry_after_headers(err.retry_after) if err.retry_after is not None else {}
    if err.status in (401, 402):  # our own upstream credentials or credit: not the caller's key or budget
        log.error("upstream refused the gateway's account: %s", err.describe())
        return ErrorInfo(502, "api_error", "The upstream API failed; retry later.")
    if err.status is None:  # no HTTP answer: a timeout, a dropped connection, a stream cut short
        if err.error_type == "timeout":
            return ErrorInfo(504, "timeout_error", "Upstream timed out.", headers=headers)
        return ErrorInfo(502, "api_error", f"The upstream connection failed ({err.error_type}).", headers=headers)
    error_type = err.error_type if err.error_type in ANTHROPIC_TYPES else TYPE_BY_STATUS.get(err.status, "api_error")
    return ErrorInfo(err.status, error_type, err.message or error_type, headers=headers)
