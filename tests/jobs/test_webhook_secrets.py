"""The receiver's verify() printed in docs/jobs.md works on what the gateway sends: one signature, and
two while a rotated secret is in its grace period."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from claudeapp.jobs import webhooks

pytestmark = pytest.mark.django_db
DOCS = Path(__file__).resolve().parents[2] / "docs" / "jobs.md"


@pytest.fixture
def documented_verify():
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)
    (source,) = [block for block in blocks if "def verify(" in block]
    namespace: dict = {}
    exec(compile(source, str(DOCS), "exec"), namespace)  # our own documentation's example
    return namespace["verify"]


def test_the_documented_verify_accepts_the_gateways_signatures_and_refuses_others(documented_verify, settings):
    settings.JOBS_WEBHOOK_SECRET_GRACE_SECONDS = 600
    body = b'{"type":"job.succeeded","job":{"id":"x"}}'
    old = webhooks.issue_secret(principal_kind="partner_key", principal_id=41)
    header = webhooks.signature_header(
        secrets_=webhooks.signing_secrets(principal_kind="partner_key", principal_id=41),
        body=body,
        timestamp=int(time.time()),
    )
    assert documented_verify(old, body, header)
    new = webhooks.rotate_secret(principal_kind="partner_key", principal_id=41).secret
    both = webhooks.signature_header(
        secrets_=webhooks.signing_secrets(principal_kind="partner_key", principal_id=41),
        body=body,
        timestamp=int(time.time()),
    )
    assert documented_verify(new, body, both) and documented_verify(old, body, both)
    assert not documented_verify(new, body + b" ", both)  # a changed body
    assert not documented_verify("whsec_someone-else", body, both)
    stale = webhooks.signature_header(secrets_=[new], body=body, timestamp=int(time.time()) - 3600)
    assert not documented_verify(new, body, stale)  # outside the replay window
    assert not documented_verify(new, body, "garbage")
