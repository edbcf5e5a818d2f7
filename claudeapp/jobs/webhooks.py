"""Signed webhook delivery for jobs that reached a terminal state.

Signature: `X-Gateway-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>`
(Stripe's scheme). Each principal has its own secret, derived from JOBS_WEBHOOK_SECRET, so
one partner cannot forge deliveries to another. Every attempt is stored as a WebhookDelivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from uuid import UUID

import httpx
from django.conf import settings
from django.utils.crypto import salted_hmac

from claudeapp.jobs import publish, ssrf
from claudeapp.jobs.errors import InvalidWebhookUrl
from claudeapp.jobs.models import Job, WebhookDelivery
from claudeapp.jobs.rendering import job_json

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Gateway-Signature"


def secret_for(*, principal_kind: str, principal_id: int) -> str:
    base = settings.JOBS_WEBHOOK_SECRET or salted_hmac("claudeapp.jobs.webhooks", "base").hexdigest()
    return hmac.new(base.encode(), f"{principal_kind}:{principal_id}".encode(), hashlib.sha256).hexdigest()


def sign(*, secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(*, secret: str, body: bytes, header: str, tolerance: int = 300, now: float | None = None) -> bool:
    """What a receiver runs (also in docs/jobs.md): constant-time compare and a replay window."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    expected = sign(secret=secret, body=body, timestamp=timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def deliver(*, job_id: UUID | str, attempt: int) -> None:
    """POST the job once, record the attempt, and schedule the next one on failure."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None or not job.webhook_url:
        return
    body = json.dumps({"type": f"job.{job.status}", "job": job_json(job)}, separators=(",", ":")).encode()
    delivery = WebhookDelivery(job=job, attempt=attempt, url=job.webhook_url, event=f"job.{job.status}")
    started = time.monotonic()
    retry = _post(job, body, delivery)
    delivery.duration_ms = int((time.monotonic() - started) * 1000)
    delivery.save()
    if retry and attempt < settings.JOBS_WEBHOOK_MAX_ATTEMPTS:
        _schedule(job_id=job.id, attempt=attempt + 1)


def _post(job: Job, body: bytes, delivery: WebhookDelivery) -> bool:
    """Fill in the delivery; True when another attempt may succeed."""
    try:
        target = ssrf.check_url(job.webhook_url)  # again: the name may resolve elsewhere by now
    except InvalidWebhookUrl as exc:
        delivery.error = str(exc)
        return False
    secret = secret_for(principal_kind=job.principal_kind, principal_id=job.principal_id)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "claudeapp-webhooks/1",
        SIGNATURE_HEADER: sign(secret=secret, body=body, timestamp=int(time.time())),
        "X-Gateway-Event": delivery.event,
        "X-Gateway-Job": str(job.id),
        "X-Gateway-Delivery-Attempt": str(delivery.attempt),
    }
    try:
        response = _send(job.webhook_url, target, body, headers)
    except httpx.HTTPError as exc:
        delivery.error = f"{exc.__class__.__name__}: {exc}"[:2000]
        return True
    delivery.status_code = response.status_code
    delivery.succeeded = 200 <= response.status_code < 300
    # 4xx other than 408/429 means the receiver refuses this payload; it will refuse it again.
    return not delivery.succeeded and (response.status_code >= 500 or response.status_code in (408, 429))


def _send(url: str, target: ssrf.Target, body: bytes, headers: dict[str, str]) -> httpx.Response:
    # Connect to the address that passed the check, keep the name for Host and TLS (SNI + cert check).
    pinned = httpx.URL(url).copy_with(host=target.address)
    headers = {**headers, "Host": httpx.URL(url).netloc.decode()}
    with httpx.Client(timeout=settings.JOBS_WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False) as client:
        return client.post(pinned, content=body, headers=headers, extensions={"sni_hostname": target.host})


def _schedule(*, job_id: UUID, attempt: int) -> None:
    countdown = min(settings.JOBS_WEBHOOK_RETRY_BASE_SECONDS * 2 ** (attempt - 2), 3600)
    publish.webhook(job_id=job_id, attempt=attempt, countdown=countdown)
