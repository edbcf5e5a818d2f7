from __future__ import annotations


class AttachmentRefused(Exception):
    """A file that cannot be attached, with the field to name in the 4xx body and the status to answer."""

    def __init__(self, message: str, *, field: str = "file", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status

    def body(self) -> dict[str, object]:
        kind = "request_too_large" if self.status == 413 else "invalid_request_error"
        return {"error": {"type": kind, "message": self.message, "field": self.field}}
