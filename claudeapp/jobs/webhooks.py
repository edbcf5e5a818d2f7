"""Signed webhook delivery for jobs that reached a terminal state.

Signature: `X-Gateway-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>`
(Stripe's scheme; two v1 values while a rotated secret's predecessor is in its grace period). Each
principal has its own secret: issued at random with a new key (WebhookSecret), or derived from
JOBS_WEBHOOK_SECRET for principals that never had one, so one partner cannot forge deliveries to
another. The partner reads and rotates it through the API. Every attempt is stored as a WebhookDelivery.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass
from functools import partial
from uuid import UUID

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac

from claudeapp.jobs import heartbeat, publish, ssrf
from claudeapp.jobs.errors import InvalidWebhookUrl
from claudeapp.jobs.models import Job, WebhookDelivery, WebhookSecret
from claudeapp.jobs.rendering import job_json

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Gateway-Signature"
# A countdown message may fire a moment before the due time by the worker's clock.
EARLY_SLACK = dt.timedelta(seconds=1)


def _derived(*, principal_kind: str, principal_id: int) -> str:
    base = settings.JOBS_WEBHOOK_SECRET or salted_hmac("claudeapp.jobs.webhooks", "base").hexdigest()
    return hmac.new(base.encode(), f"{principal_kind}:{principal_id}".encode(), hashlib.sha256).hexdigest()


def _stored(principal_kind: str, principal_id: int) -> WebhookSecret | None:
    return WebhookSecret.objects.filter(principal_kind=principal_kind, principal_id=principal_id).first()


def secret_for(*, principal_kind: str, principal_id: int) -> str:
    """The principal's current signing secret: the one issued or rotated last, else the derived one."""
    stored = _stored(principal_kind, principal_id)
    return stored.secret if stored else _derived(principal_kind=principal_kind, principal_id=principal_id)


@dataclass(frozen=True)
class SecretInfo:
    secret: str
    previous_valid_until: dt.datetime | None  # the previous secret also signs until then
    rotated_at: dt.datetime | None


def secret_info(*, principal_kind: str, principal_id: int) -> SecretInfo:
    stored = _stored(principal_kind, principal_id)
    if stored is None:
        return SecretInfo(_derived(principal_kind=principal_kind, principal_id=principal_id), None, None)
    until = stored.previous_valid_until if _previous_live(stored) else None
    return SecretInfo(stored.secret, until, stored.rotated_at)


def signing_secrets(*, principal_kind: str, principal_id: int) -> list[str]:
    """Every secret a delivery is signed with now: the current one, then the previous one in its grace."""
    stored = _stored(principal_kind, principal_id)
    if stored is None:
        return [_derived(principal_kind=principal_kind, principal_id=principal_id)]
    return [stored.secret, stored.previous_secret] if _previous_live(stored) else [stored.secret]


def _previous_live(stored: WebhookSecret) -> bool:
    until = stored.previous_valid_until
    return bool(stored.previous_secret) and until is not None and until > timezone.now()


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def issue_secret(*, principal_kind: str, principal_id: int) -> str:
    """A random secret for a new principal (a new key): stored, so it can be rotated later."""
    stored, _ = WebhookSecret.objects.get_or_create(
        principal_kind=principal_kind, principal_id=principal_id, defaults={"secret": _new_secret()}
    )
    return stored.secret


@transaction.atomic
def rotate_secret(*, principal_kind: str, principal_id: int, grace: dt.timedelta | None = None) -> SecretInfo:
    """A new signing secret; the old one keeps signing (a second v1) for `grace` (default
    JOBS_WEBHOOK_SECRET_GRACE_SECONDS), so receivers switch without missing a delivery."""
    grace = grace if grace is not None else dt.timedelta(seconds=settings.JOBS_WEBHOOK_SECRET_GRACE_SECONDS)
    now = timezone.now()
    current = secret_for(principal_kind=principal_kind, principal_id=principal_id)
    stored, _ = WebhookSecret.objects.select_for_update().get_or_create(
        principal_kind=principal_kind, principal_id=principal_id, defaults={"secret": current}
    )
    stored.previous_secret, stored.previous_valid_until = stored.secret, now + grace
    stored.secret, stored.rotated_at = _new_secret(), now
    stored.save(update_fields=["secret", "previous_secret", "previous_valid_until", "rotated_at"])
    return SecretInfo(stored.secret, stored.previous_valid_until if grace else None, now)


def sign(*, secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def signature_header(*, secrets_: list[str], body: bytes, timestamp: int) -> str:
    """`t=<ts>,v1=<mac>[,v1=<mac>]`: one v1 per live secret, the current one first (Stripe's scheme)."""
    macs = [sign(secret=secret, body=body, timestamp=timestamp).split(",v1=", 1)[1] for secret in secrets_]
    return ",".join([f"t={timestamp}", *(f"v1={mac}" for mac in macs)])


def verify(*, secret: str, body: bytes, header: str, tolerance: int = 300, now: float | None = None) -> bool:
    """What a receiver runs (also in docs/jobs.md): any v1 may match (two during a secret rotation),
    constant-time compare and a replay window."""
    items = [item.split("=", 1) for item in header.split(",") if "=" in item]
    stamps = [value for name, value in items if name.strip() == "t"]
    try:
        timestamp = int(stamps[0])
    except (IndexError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    expected = sign(secret=secret, body=body, timestamp=timestamp).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, value.strip()) for name, value in items if name.strip() == "v1")


def send_test_event(*, principal_kind: str, principal_id: int, url: str) -> WebhookDelivery:
    """POST a signed `ping` event to `url` now (the portal's "send test event"), under the same SSRF
    guard and signing as job deliveries. The returned delivery (unsaved: no job) has the status or error."""
    body = json.dumps({"type": "ping", "sent_at": timezone.now().isoformat()}, separators=(",", ":")).encode()
    target = ssrf.check_url(url)  # InvalidWebhookUrl: the caller names the field
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "claudeapp-webhooks/1",
        SIGNATURE_HEADER: signature_header(
            secrets_=signing_secrets(principal_kind=principal_kind, principal_id=principal_id),
            body=body,
            timestamp=int(time.time()),
        ),
        "X-Gateway-Event": "ping",
    }
    result = WebhookDelivery(url=url, event="ping", attempt=1)
    started = time.monotonic()
    try:
        response = _send(url, target, body, headers)
        result.status_code, result.succeeded = response.status_code, 200 <= response.status_code < 300
    except httpx.HTTPError as exc:
        result.error = f"{exc.__class__.__name__}: {exc}"[:2000]
    result.duration_ms = int((time.monotonic() - started) * 1000)
    return result


def deliver(*, job_id: UUID | str, attempt: int) -> None:
    """POST the job once, record the attempt, and schedule the next one on failure.

    The job row says which attempt is owed and when (transitions._end, the sweeper): a message for
    another attempt, or for one another delivery holds the lease of, is a no-op. The lease is renewed
    by the heartbeat while the POST is in flight; a delivery whose worker died is re-published by the
    sweeper once its lease runs out."""
    job = _claim(job_id=job_id, attempt=attempt)
    if job is None:
        return
    body = json.dumps({"type": f"job.{job.status}", "job": job_json(job)}, separators=(",", ":")).encode()
    delivery = WebhookDelivery(job=job, attempt=attempt, url=job.webhook_url, event=f"job.{job.status}")
    started = time.monotonic()
    with heartbeat.delivering(job_id=job.pk, attempt=attempt):
        retry = _post(job, body, delivery)
    delivery.duration_ms = int((time.monotonic() - started) * 1000)
    with transaction.atomic():
        delivery.save()
        _settle_attempt(job_id=job.pk, attempt=attempt, retry=retry)


def owe(*, job: Job) -> list[str]:
    """transitions._end: the job's end owes its first delivery now. Returns the fields it set."""
    job.webhook_attempt, job.webhook_due_at, job.webhook_lease_expires_at = 1, timezone.now(), None
    transaction.on_commit(partial(publish.webhook, job_id=job.pk, attempt=1))
    return ["webhook_attempt", "webhook_due_at", "webhook_lease_expires_at"]


def _claim(*, job_id: UUID | str, attempt: int) -> Job | None:
    now = timezone.now()
    owed = Q(webhook_attempt=attempt, webhook_due_at__lte=now + EARLY_SLACK) & (
        Q(webhook_lease_expires_at__isnull=True) | Q(webhook_lease_expires_at__lt=now)
    )
    # A job that ended before the row kept what it owes (attempt 0, nothing due): a message published
    # then is still honoured, once, and the row takes over from there.
    legacy = Q(webhook_attempt=0, webhook_due_at__isnull=True, status__in=Job.TERMINAL) & ~Q(webhook_url="")
    claimed = Job.objects.filter(owed | legacy, pk=job_id).update(
        webhook_attempt=attempt, webhook_due_at=now,
        webhook_lease_expires_at=now + dt.timedelta(seconds=settings.JOBS_LEASE_SECONDS),
    )  # fmt: skip
    job = Job.objects.filter(pk=job_id).first() if claimed else None
    return job if job is not None and job.webhook_url else None


def _settle_attempt(*, job_id: UUID, attempt: int, retry: bool) -> None:
    owed = Job.objects.filter(pk=job_id, webhook_attempt=attempt)  # the job ended again since: not ours
    if retry and attempt < settings.JOBS_WEBHOOK_MAX_ATTEMPTS:
        countdown = min(settings.JOBS_WEBHOOK_RETRY_BASE_SECONDS * 2 ** (attempt - 1), 3600)
        due = timezone.now() + dt.timedelta(seconds=countdown)
        if owed.update(webhook_attempt=attempt + 1, webhook_due_at=due, webhook_lease_expires_at=None):
            transaction.on_commit(partial(publish.webhook, job_id=job_id, attempt=attempt + 1, countdown=countdown))
    else:
        owed.update(webhook_due_at=None, webhook_lease_expires_at=None)  # delivered, refused, or given up


def _post(job: Job, body: bytes, delivery: WebhookDelivery) -> bool:
    """Fill in the delivery; True when another attempt may succeed."""
    try:
        target = ssrf.check_url(job.webhook_url)  # again: the name may resolve elsewhere by now
    except InvalidWebhookUrl as exc:
        delivery.error = str(exc)
        return False
    secrets_ = signing_secrets(principal_kind=job.principal_kind, principal_id=job.principal_id)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "claudeapp-webhooks/1",
        SIGNATURE_HEADER: signature_header(secrets_=secrets_, body=body, timestamp=int(time.time())),
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
