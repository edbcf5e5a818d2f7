"""The calls package's errors, and the one table of the HTTP status a refusal is answered and logged with.

It imports nothing, and must stay so: claudeapp/celery.py imports claudeapp/ops/job_calls.py, which reads
the table, before Django is set up.
"""

from __future__ import annotations

# A call refused before any upstream call is one of two kinds: a limit (our rate or token limits, or the
# organisation's room upstream: UpstreamBusy) or a budget. The one table of the HTTP status each kind is
# answered with (/api/v1 and /anthropic) and logged with on every surface (a call's, a job attempt's and
# a batch item's request log line), so what the caller got and what the operator reads cannot drift.
LIMIT = "limit"
BUDGET = "budget"
REFUSAL_STATUS = {LIMIT: 429, BUDGET: 402}


def refusal_kind(status: int | None) -> str:
    """The kind of refusal a logged status stands for (a batch item's line keeps only the status)."""
    return BUDGET if status == REFUSAL_STATUS[BUDGET] else LIMIT


class UpstreamBusy(Exception):
    """The deployment is at the organisation's Anthropic limits for this model for longer than a
    request should wait: queue the work (chat) or tell the caller when to come back (API)."""

    def __init__(self, *, model_id: str, retry_after_seconds: float) -> None:
        self.model_id = model_id
        self.retry_after_seconds = retry_after_seconds
        super().__init__(f"{model_id} is at the organisation's rate limit; retry in {retry_after_seconds:.1f}s")


class MaxTokensTooLarge(ValueError):
    def __init__(self, *, max_tokens: int, model_id: str, ceiling: int) -> None:
        self.max_tokens, self.model_id, self.ceiling = max_tokens, model_id, ceiling
        super().__init__(f"max_tokens: {max_tokens} > {ceiling}, which is the maximum allowed for {model_id}")
