"""Request counters and a ring of recent requests, for tests to assert on (GET /_emulator/stats)."""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import Any


class Stats:
    def __init__(self, keep: int) -> None:
        self.total = 0
        self.by_path: Counter[str] = Counter()
        self.by_model: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.faults = 0
        self.recent: deque[dict[str, Any]] = deque(maxlen=max(1, keep))

    def record(self, entry: dict[str, Any]) -> None:
        self.total += 1
        self.by_path[f"{entry['method']} {entry['path']}"] += 1
        if entry.get("model") and entry["path"] == "/v1/messages":  # generation calls only
            self.by_model[entry["model"]] += 1
        self.by_status[str(entry["status"])] += 1
        if entry.get("fault"):
            self.faults += 1
        self.recent.append(entry)

    def snapshot(self, last: int | None = None) -> dict[str, Any]:
        recent = list(self.recent)
        if last is not None:
            recent = recent[-last:] if last > 0 else []
        return {
            "total_requests": self.total,
            "faults_fired": self.faults,
            "by_path": dict(self.by_path),
            "by_model": dict(self.by_model),
            "by_status": dict(self.by_status),
            "recent": recent,
        }


def new_entry(method: str, path: str, request_id: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "time": time.time(),
        "method": method,
        "path": path,
        "request_id": request_id,
        "retry_count": headers.get("x-stainless-retry-count"),
        # What the caller asked for, so a proxy's tests can see what it forwarded.
        "version": headers.get("anthropic-version"),
        "beta": headers.get("anthropic-beta"),
        "model": None,
        "stream": False,
        "status": None,
        "fault": None,
    }
