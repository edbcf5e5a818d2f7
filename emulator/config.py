"""Emulator settings: defaults, JSON file / CLI overrides and runtime merges."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

MB = 1024 * 1024
# First stdout line of `python -m emulator`: "EMULATOR_LISTENING http://host:port".
READY_PREFIX = "EMULATOR_LISTENING"


@dataclass
class Config:
    # None = accept any non-empty key; a list = only these keys authenticate.
    api_keys: list[str] | None = None
    max_body_bytes: int = 32 * MB
    batch_max_body_bytes: int = 256 * MB
    # Pacing: delay before response headers, before the first content delta, and per delta.
    latency_ms: float = 0.0
    ttft_ms: float = 0.0
    chunk_ms: float = 0.0
    words_per_chunk: int = 3
    # Random faults on POST /v1/messages: {"529": 0.1, "500": 0.02}, drawn from a seeded RNG.
    error_rates: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    # Faults by model, same grammar as the fault marker: {"claude-opus-5-5": "529"}.
    model_faults: dict[str, str] = field(default_factory=dict)
    retired_models: list[str] = field(default_factory=list)
    forbidden_models: list[str] = field(default_factory=list)
    no_prefill_models: list[str] = field(default_factory=list)
    cache_min_tokens: int = 1024
    batch_processing_seconds: float = 3.0
    batch_cancel_seconds: float = 0.0
    ratelimit_enabled: bool = True
    requests_per_minute: int = 40_000
    input_tokens_per_minute: int = 20_000_000
    output_tokens_per_minute: int = 4_000_000
    retry_after_seconds: float = 1.0
    retry_after_ms: int = 100
    recent_requests: int = 200
    # Charges kept for GET /_emulator/ledger (oldest dropped first).
    ledger_size: int = 10_000

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def merged(self, patch: dict[str, Any]) -> Config:
        """Return a copy with `patch` applied; dict fields merge key-wise (a null value deletes)."""
        data = copy.deepcopy(self.to_dict())
        known = {f.name for f in fields(self)}
        for key, value in patch.items():
            if key not in known:
                raise ValueError(f"unknown config key: {key}")
            data[key] = _merge_value(key, data[key], value)
        return Config(**data)


def _merge_value(key: str, current: Any, value: Any) -> Any:
    if isinstance(current, dict):
        if not isinstance(value, dict):
            raise ValueError(f"{key}: expected an object")
        merged = dict(current)
        for k, v in value.items():
            if v is None:
                merged.pop(str(k), None)
            else:
                merged[str(k)] = v
        return merged
    if key == "api_keys" and value is None:
        return None
    expected = type(current) if current is not None else list
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ValueError(f"{key}: expected {expected.__name__}")
    return value


def load_config(path: str | None = None, overrides: dict[str, Any] | None = None) -> Config:
    config = Config()
    if path:
        config = config.merged(json.loads(Path(path).read_text()))
    if overrides:
        config = config.merged(overrides)
    return config
