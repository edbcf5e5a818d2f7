"""Model catalogue: the ids the 2.14 SDK knows, newest first, plus the retired seeds."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelInfo:
    id: str
    display_name: str
    created_at: str
    line: str | None
    max_tokens: int
    max_input_tokens: int
    lifecycle: str = "active"
    deprecated_at: str | None = None
    retires_at: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "type": "model",
            "id": self.id,
            "display_name": self.display_name,
            "created_at": self.created_at,
            "line": self.line,
            "lifecycle": self.lifecycle,
            "deprecated_at": self.deprecated_at,
            "retires_at": self.retires_at,
            "max_tokens": self.max_tokens,
            "max_input_tokens": self.max_input_tokens,
        }


def _m(mid: str, name: str, created: str, line: str | None, out: int, ctx: int, **kw: str) -> ModelInfo:
    return ModelInfo(mid, name, created + "T00:00:00Z", line, out, ctx, **kw)


def _deprecated(deprecated: str, retires: str) -> dict[str, str]:
    return {
        "lifecycle": "deprecated",
        "deprecated_at": deprecated + "T00:00:00Z",
        "retires_at": retires + "T00:00:00Z",
    }


# Release dates are plausible placeholders; the SDK ids and deprecations are real (CLAUDE-API.md A5).
CATALOGUE: tuple[ModelInfo, ...] = (
    _m("claude-fable-5-2", "Claude Fable 5.2", "2026-11-09", "fable", 128_000, 1_000_000),
    _m("claude-mythos-5-2", "Claude Mythos 5.2", "2026-11-09", "mythos", 128_000, 1_000_000),
    _m("claude-haiku-5-5", "Claude Haiku 5.5", "2026-10-20", "haiku", 64_000, 1_000_000),
    _m("claude-sonnet-5-5", "Claude Sonnet 5.5", "2026-10-07", "sonnet", 128_000, 1_000_000),
    _m("claude-fable-5-1", "Claude Fable 5.1", "2026-09-15", "fable", 128_000, 1_000_000),
    _m("claude-opus-5-5", "Claude Opus 5.5", "2026-09-01", "opus", 128_000, 1_000_000),
    _m("claude-mythos-5-1", "Claude Mythos 5.1", "2026-08-20", "mythos", 128_000, 1_000_000),
    _m("claude-sonnet-5", "Claude Sonnet 5", "2026-07-15", "sonnet", 128_000, 1_000_000),
    _m("claude-fable-5", "Claude Fable 5", "2026-06-24", "fable", 128_000, 1_000_000),
    _m("claude-mythos-5", "Claude Mythos 5", "2026-06-24", "mythos", 128_000, 1_000_000),
    _m("claude-opus-5", "Claude Opus 5", "2026-05-20", "opus", 128_000, 1_000_000),
    _m("claude-opus-4-8", "Claude Opus 4.8", "2026-04-14", "opus", 128_000, 1_000_000),
    _m("claude-opus-4-7", "Claude Opus 4.7", "2026-03-10", "opus", 128_000, 1_000_000),
    _m(
        "claude-mythos-preview",
        "Claude Mythos Preview",
        "2026-02-24",
        "mythos",
        128_000,
        1_000_000,
        **_deprecated("2026-05-01", "2026-06-30"),
    ),
    _m("claude-opus-4-6", "Claude Opus 4.6", "2026-02-05", "opus", 128_000, 1_000_000),
    _m("claude-sonnet-4-6", "Claude Sonnet 4.6", "2026-02-17", "sonnet", 64_000, 1_000_000),
    _m("claude-haiku-4-5", "Claude Haiku 4.5", "2025-10-01", "haiku", 64_000, 200_000),
    _m("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-01", "haiku", 64_000, 200_000),
    _m(
        "claude-opus-4-5",
        "Claude Opus 4.5",
        "2025-11-01",
        "opus",
        64_000,
        200_000,
        **_deprecated("2026-10-22", "2027-01-22"),
    ),
    _m(
        "claude-opus-4-5-20251101",
        "Claude Opus 4.5",
        "2025-11-01",
        "opus",
        64_000,
        200_000,
        **_deprecated("2026-10-22", "2027-01-22"),
    ),
    _m(
        "claude-sonnet-4-5",
        "Claude Sonnet 4.5",
        "2025-09-29",
        "sonnet",
        64_000,
        200_000,
        **_deprecated("2026-08-31", "2026-11-30"),
    ),
    _m(
        "claude-sonnet-4-5-20250929",
        "Claude Sonnet 4.5",
        "2025-09-29",
        "sonnet",
        64_000,
        200_000,
        **_deprecated("2026-08-31", "2026-11-30"),
    ),
)

# Real ids retired on 2026-06-15: requests naming them fail with 404 not_found_error.
BUILTIN_RETIRED: frozenset[str] = frozenset({"claude-sonnet-4-20250514", "claude-opus-4-20250514"})

BY_ID: dict[str, ModelInfo] = {m.id: m for m in CATALOGUE}


def is_retired(model_id: str, configured: list[str]) -> bool:
    return model_id in BUILTIN_RETIRED or model_id in configured


def available(retired: list[str]) -> list[ModelInfo]:
    return [m for m in CATALOGUE if m.id not in retired]


def lookup(model_id: str, retired: list[str]) -> ModelInfo | None:
    if is_retired(model_id, retired):
        return None
    return BY_ID.get(model_id)
