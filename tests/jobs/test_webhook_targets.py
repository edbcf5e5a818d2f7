"""The SSRF guard on webhook targets: refused at creation, and refused again at delivery when the
target turned non-public since. Every case here runs in a rolled-back transaction: nothing commits,
so nothing is published and no worker sees these jobs (the test delivers itself). That makes each of
the ~90 cases milliseconds instead of a truncated database and a quiet queue (tests/jobs/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO

import pytest

from claudeapp.jobs import services, ssrf, webhooks
from claudeapp.jobs.errors import InvalidWebhookUrl
from claudeapp.jobs.models import WebhookDelivery
from tests.core.ssrf_forms import NON_PUBLIC_URLS

pytestmark = pytest.mark.django_db


@pytest.fixture
def quiet_queue_at_teardown() -> Iterator[None]:
    """Overrides the folder's fixture: nothing here commits, so no worker has anything to finish."""
    yield


@pytest.fixture
def seeded_models(db) -> None:
    """The folder's fixture inside this test's transaction (the models and prices the payload names)."""
    from billing import seed as billing_seed
    from routing import seed as routing_seed

    routing_seed.run(stdout=StringIO())
    billing_seed.run(stdout=StringIO())


@pytest.mark.parametrize("url", NON_PUBLIC_URLS)
def test_the_ssrf_guard_refuses_non_public_targets(settings, url):
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(InvalidWebhookUrl):
        ssrf.check_url(url)


@pytest.mark.parametrize("url", NON_PUBLIC_URLS)
def test_a_job_with_a_non_public_webhook_is_refused_naming_webhook_url(
    seeded_models, settings, principal, payload_factory, url
):
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(InvalidWebhookUrl) as refused:
        services.create(principal=principal, payload=payload_factory(), webhook_url=url)
    assert refused.value.field == "webhook_url"


@pytest.mark.parametrize("url", [u for u in NON_PUBLIC_URLS if u.startswith("http://") and "@" not in u])
def test_a_job_webhook_to_a_non_public_target_is_refused_at_delivery(
    seeded_models, settings, principal, payload_factory, url
):
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = True  # accepted at creation (as if the name resolved outside then)
    job = services.create(principal=principal, payload=payload_factory(), webhook_url=url)
    settings.JOBS_WEBHOOK_ALLOW_PRIVATE = False

    services.cancel(job_id=job.id)  # its end owes attempt 1 (nothing is published here: the test delivers it)
    webhooks.deliver(job_id=job.id, attempt=1)

    delivery = WebhookDelivery.objects.get(job_id=job.id)
    assert delivery.status_code is None and delivery.error.startswith("webhook_url refused")
