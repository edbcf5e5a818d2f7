"""Domain errors of the job queue; each carries what the API needs to answer."""

from __future__ import annotations


class JobError(Exception):
    status_code = 400
    error_type = "invalid_request_error"
    field: str | None = None


class JobNotFound(JobError):
    status_code = 404
    error_type = "not_found_error"

    def __init__(self, job_id: object) -> None:
        super().__init__(f"No job {job_id}.")
        self.job_id = job_id


class InvalidTransition(JobError):
    status_code = 409
    error_type = "invalid_state_error"

    def __init__(self, *, job_id: object, status: str, action: str) -> None:
        super().__init__(f"Cannot {action} a job that is {status}.")
        self.job_id, self.status, self.action = job_id, status, action


class IdempotencyConflict(JobError):
    """The same Idempotency-Key was used before with a different request body (Stripe answers 409 too)."""

    status_code = 409
    error_type = "idempotency_error"
    field = "Idempotency-Key"

    def __init__(self, *, key: str, job_id: object) -> None:
        super().__init__("This Idempotency-Key was already used with a different request body.")
        self.key, self.job_id = key, job_id


class InvalidWebhookUrl(JobError):
    field = "webhook_url"

    def __init__(self, *, url: str, reason: str) -> None:
        super().__init__(f"webhook_url refused: {reason}.")
        self.url, self.reason = url, reason


class InvalidPayload(JobError):
    def __init__(self, *, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}.")
        self.field, self.reason = field, reason


class BatchNotCancelable(JobError):
    status_code = 409
    error_type = "invalid_state_error"

    def __init__(self, *, batch_id: object, status: str) -> None:
        super().__init__(f"Message batch {batch_id} is {status}: only a submitted, unfinished batch can be canceled.")
        self.batch_id, self.status = batch_id, status
