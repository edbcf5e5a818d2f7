"""Routing's domain exceptions. Each carries the name the caller asked for, so a view can answer 400."""

from __future__ import annotations


class RoutingError(Exception):
    pass


class UnknownModel(RoutingError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown model or alias: {name!r}")


class ModelDisabled(RoutingError):
    def __init__(self, name: str, model_id: str, alternatives: tuple[str, ...] = ()) -> None:
        self.name, self.model_id, self.alternatives = name, model_id, tuple(alternatives)
        instead = f"; use {', '.join(self.alternatives)} instead" if self.alternatives else ""
        super().__init__(f"model {model_id!r} (asked for as {name!r}) is disabled{instead}")


class UnsafeRegex(RoutingError):
    def __init__(self, pattern: str, why: str) -> None:
        self.pattern, self.why = pattern, why
        super().__init__(f"rejected regex {pattern!r}: {why}")


class RuleSetStateError(RoutingError):
    def __init__(self, rule_set_id: int | None, why: str) -> None:
        self.rule_set_id, self.why = rule_set_id, why
        super().__init__(why)
