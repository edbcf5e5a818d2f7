"""Every Prometheus metric the gateway counts, and the small functions the pipeline calls to count.

Counters and histograms only: in multiprocess mode (PROMETHEUS_MULTIPROC_DIR set before this module
is imported, as scripts/run.sh and the Procfile do) each uvicorn worker and Celery process writes its
own mmap files and /metrics sums them, so every process counts. Figures read at scrape time (breaker
state, queue depth, job counts) are not kept here but collected by claudeapp/ops/metrics_view.py.

Each function costs a few microseconds (a dict lookup per label set and one mmap write): no I/O.
Label values are bounded: surfaces, models from the model map, principal kinds, token classes,
endings and upstream error types, never an id or free text.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client import multiprocess as _multiprocess

# Seconds. Upstream calls run from well under a second (short answers) to minutes (long ones).
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0, 300.0)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
TOKEN_CLASSES = ("input", "output", "cache_write", "cache_read")

REQUESTS = Counter(
    "claudeapp_requests",
    "Billed calls by surface (chat, api, anthropic, jobs; batches: Message Batches items, one per result; other: "
    "none of these), ending (complete, cut, error, disconnect, failed, refused) and model (the one that answered; "
    "the one decided or asked for when none did).",
    ["surface", "status", "model"],
)
UPSTREAM_LATENCY = Histogram(
    "claudeapp_upstream_latency_seconds",
    "Each upstream attempt's duration, retries and fallbacks included, by model.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
UPSTREAM_TTFT = Histogram(
    "claudeapp_upstream_ttft_seconds",
    "Streamed calls: from the gateway call's start to the first text sent on, by the model that answered.",
    ["model"],
    buckets=TTFT_BUCKETS,
)
UPSTREAM_ATTEMPTS = Counter(
    "claudeapp_upstream_attempts",
    "Upstream attempts by model and outcome (ok, circuit_open, or the upstream error type).",
    ["model", "outcome"],
)
UPSTREAM_RETRIES = Counter(
    "claudeapp_upstream_retries", "Failed attempts retried on the same model, by model.", ["model"]
)
UPSTREAM_FALLBACKS = Counter(
    "claudeapp_upstream_fallbacks",
    "Calls answered by a fallback model: the model first in the chain and the one that answered.",
    ["model", "fallback_model"],
)
LIMIT_REFUSALS = Counter(
    "claudeapp_limit_refusals", "Calls refused by a rate limit (429) before any upstream call, by surface.", ["surface"]
)
BUDGET_REFUSALS = Counter(
    "claudeapp_budget_refusals", "Calls refused by a budget (402) before any upstream call, by surface.", ["surface"]
)
TOKENS = Counter(
    "claudeapp_tokens",
    "Billed tokens by model, principal kind and class (input, output, cache_write, cache_read), from the ledger.",
    ["model", "principal_kind", "token_class"],
)
COST = Counter(
    "claudeapp_cost_micros",
    "Billed cost in micro-dollars (1e-6 USD) by model and principal kind, from the ledger.",
    ["model", "principal_kind"],
)

JOB_OUTCOMES = Counter(
    "claudeapp_job_outcomes",
    "Jobs that ended, by mode (queue, batch), queue and outcome (succeeded, failed, dead, canceled); counted by "
    "the process that ended them (a worker, the batch poller, or a web process for a cancel).",
    ["mode", "queue", "outcome"],
)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


if multiprocess_dir():
    # Each process opens its files on its first count: the directory must exist by then. Emptying it is
    # the start script's job (scripts/run.sh), before any process starts: never one process's, at run time.
    os.makedirs(multiprocess_dir() or "", exist_ok=True)


_children: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    # metric.labels() validates and locks on every call (~2 µs here); the label sets are few, keep them.
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def call_ended(*, surface: str, status: str, model: str) -> None:
    _child(REQUESTS, surface, status, model or "unknown").inc()


def refused(*, surface: str, kind: str, model: str) -> None:
    """`kind`: "limit" (429) or "budget" (402)."""
    _child(LIMIT_REFUSALS if kind == "limit" else BUDGET_REFUSALS, surface).inc()
    _child(REQUESTS, surface, "refused", model or "unknown").inc()


def upstream_attempt(*, model: str, outcome: str, latency_ms: float, retrying: bool) -> None:
    _child(UPSTREAM_ATTEMPTS, model, outcome).inc()
    if outcome != "circuit_open":  # skipped without a call: no latency to speak of
        _child(UPSTREAM_LATENCY, model).observe(latency_ms / 1000)
    if retrying:
        _child(UPSTREAM_RETRIES, model).inc()


def upstream_result(*, first_model: str, model_used: str, ttft_ms: float | None) -> None:
    if ttft_ms is not None:
        _child(UPSTREAM_TTFT, model_used).observe(ttft_ms / 1000)
    if model_used != first_model:
        _child(UPSTREAM_FALLBACKS, first_model, model_used).inc()


def job_ended(*, mode: str, queue: str, outcome: str) -> None:
    _child(JOB_OUTCOMES, mode, queue, outcome).inc()


def billed(
    *,
    model: str,
    principal_kind: str,
    input_tokens: int,
    output_tokens: int,
    cache_write_tokens: int,
    cache_read_tokens: int,
    cost_micros: int,
) -> None:
    """One ledger line written (billing/ledger.py calls it once the line is committed)."""
    for token_class, amount in zip(
        TOKEN_CLASSES, (input_tokens, output_tokens, cache_write_tokens, cache_read_tokens), strict=True
    ):
        if amount:
            _child(TOKENS, model, principal_kind, token_class).inc(amount)
    if cost_micros:
        _child(COST, model, principal_kind).inc(cost_micros)


def registry() -> CollectorRegistry:
    """What a scrape reads: every process's files in multiprocess mode, else this process's counters."""
    path = multiprocess_dir()
    if path is None:
        from prometheus_client import REGISTRY

        return REGISTRY
    merged = CollectorRegistry()
    _multiprocess.MultiProcessCollector(merged, path=path)
    return merged
