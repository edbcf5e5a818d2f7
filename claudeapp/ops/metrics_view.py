"""GET /metrics: the Prometheus exposition of every process's counters plus figures read at scrape time.

Counted on the hot path (claudeapp/core/metrics.py, summed across processes in multiprocess mode):
requests, upstream latency / TTFT / attempts / retries / fallbacks, refusals, tokens and cost,
job outcomes.
Read here, once per scrape: each enabled model's circuit state from Redis (one round trip per
model) and the job table in one aggregate query (depth and oldest age per queue, rows by status,
the dead-letter queue), both read by claudeapp/ops/health.py. A collector that cannot read its source
says so in claudeapp_scrape_ok instead of failing the scrape.

Access: `Authorization: Bearer <METRICS_BEARER_TOKEN>` (when set), or a client address inside
METRICS_ALLOWED_NETWORKS (default loopback only); anything else is 403.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from claudeapp.core import metrics
from claudeapp.ops import health

log = logging.getLogger(__name__)
BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}


@require_GET
def scrape(request: HttpRequest) -> HttpResponse:
    if not allowed(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain; charset=utf-8")
    scraped = CollectorRegistry()
    scraped.register(ScrapeTimeCollector())
    body = generate_latest(metrics.registry()) + generate_latest(scraped)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_BEARER_TOKEN
    if token:
        scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR") or "")
    except ValueError:
        return False
    return any(address in network for network in _networks(tuple(settings.METRICS_ALLOWED_NETWORKS)))


@functools.cache
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip())


class ScrapeTimeCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("claudeapp_scrape_ok", "1 when a scrape-time collector could read its source.",
                               labels=["collector"])  # fmt: skip
        for name, collect in (("breakers", breaker_families), ("jobs", job_families)):
            try:
                families = list(collect())
            except Exception:  # Redis or Postgres down: the rest of the scrape still answers
                log.warning("metrics: the %s collector failed", name, exc_info=True)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up


def breaker_families() -> Iterator[GaugeMetricFamily]:
    state = GaugeMetricFamily(
        "claudeapp_breaker_state", "Circuit state per enabled model: 0 closed, 1 half-open, 2 open.", labels=["model"]
    )
    failures = GaugeMetricFamily(
        "claudeapp_breaker_failures", "Failures counted in the breaker's window, per model.", labels=["model"]
    )
    for status in health.breakers():
        state.add_metric([status.model], BREAKER_VALUES.get(str(status.state), 0))
        failures.add_metric([status.model], status.failures)
    yield state
    yield failures


def job_families() -> Iterator[GaugeMetricFamily]:
    figures = health.jobs()
    now = timezone.now()
    by_status = GaugeMetricFamily("claudeapp_jobs", "Job rows by queue and status.", labels=["queue", "status"])
    depth = GaugeMetricFamily("claudeapp_jobs_queue_depth", "Jobs waiting (queued) per queue.", labels=["queue"])
    oldest = GaugeMetricFamily(
        "claudeapp_jobs_oldest_queued_age_seconds",
        "Age of the oldest queued job per queue (0: none).",
        labels=["queue"],
    )
    for (queue, status), count in figures.by_status.items():
        by_status.add_metric([queue, status], count)
    for queue in figures.queues.values():
        depth.add_metric([queue.queue], queue.depth)
        oldest.add_metric([queue.queue], queue.oldest_age_seconds(now))
    yield from (by_status, depth, oldest)
    yield GaugeMetricFamily(
        "claudeapp_jobs_dead_letter", "Jobs in the dead-letter queue (status dead).", value=figures.dead
    )
