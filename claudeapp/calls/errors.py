from __future__ import annotations


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
