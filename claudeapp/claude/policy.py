"""Retry and fallback decisions, shared by the sync and async gateway loops (no I/O here)."""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from django.conf import settings

from claudeapp.claude.errors import UpstreamError, UpstreamNotFound


class Step(enum.Enum):
    RETRY = "retry"  # same model again after `delay`
    NEXT_MODEL = "next_model"  # walk on down the fallback chain
    STOP = "stop"  # raise now: no other model would answer differently


@dataclass(frozen=True)
class Decision:
    step: Step
    delay: float = 0.0


def falls_back(err: UpstreamError) -> bool:
    """A non-retryable error that is about the model, not the request.

    404 (unknown or retired model) and 403 (this key may not use that model) say nothing about
    the next model in the chain, so we try it. 400/413/422 are about the request body and 401
    about our key: every model would answer the same, so we stop at once.
    """
    return isinstance(err, UpstreamNotFound) or err.status == 403


def decide(err: UpstreamError, *, attempt: int, max_attempts: int | None = None) -> Decision:
    """What to do after `attempt` (1-based) of at most `max_attempts` per model failed with `err`."""
    if not err.retryable:
        return Decision(Step.NEXT_MODEL if falls_back(err) else Step.STOP)
    if err.retry_after is not None and err.retry_after > settings.CLAUDE_RETRY_AFTER_CAP_SECONDS:
        return Decision(Step.NEXT_MODEL)  # waiting that long helps nobody; the fallback may answer now
    if attempt >= (max_attempts or settings.CLAUDE_MAX_ATTEMPTS):
        return Decision(Step.NEXT_MODEL)
    delay = err.retry_after if err.retry_after is not None else backoff(attempt)
    return Decision(Step.RETRY, delay)


def backoff(attempt: int) -> float:
    """Exponential backoff with up to 25% jitter, so a crowd of retries does not arrive in step."""
    delay = min(settings.CLAUDE_RETRY_BASE_SECONDS * 2 ** (attempt - 1), settings.CLAUDE_RETRY_MAX_SECONDS)
    return delay * (1 - 0.25 * random.random())
