"""What a handler gets: the request, a responder, the emulator state and its stats entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emulator.http import Request, Responder
from emulator.state import State


@dataclass
class Ctx:
    request: Request
    out: Responder
    state: State
    entry: dict[str, Any]
    params: dict[str, str] = field(default_factory=dict)
    charged: bool = False  # POST /v1/messages: its ledger record is written

    @property
    def version(self) -> str:
        return self.request.headers.get("anthropic-version", "")

    @property
    def owner(self) -> str:
        return self.request.api_key or ""

    def now(self) -> float:
        return self.state.clock.now()
