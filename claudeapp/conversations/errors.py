"""Domain errors of conversations; each names the request field it is about."""

from __future__ import annotations


class InvalidTurn(Exception):
    """A turn that cannot start as asked (edit of an unknown message, regenerate of a streaming answer...)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
