from __future__ import annotations


class PortalRefused(Exception):
    """An action the operator's caps or the form's data do not allow; `field` names the form field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
