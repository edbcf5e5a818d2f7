"""Jobs are routed when they are created: aliases and `auto` become models, bulk work becomes a batch."""

from __future__ import annotations

import pytest

from billing.models import LedgerEntry
from claudeapp.jobs import services
from claudeapp.jobs.models import Job

pytestmark = pytest.mark.usefixtures("no_worker", "gateway_settings")


def test_a_job_tagged_bulk_without_a_mode_is_routed_to_a_message_batch(principal, payload_factory):
    job = services.create(principal=principal, payload=payload_factory(model="auto", metadata={"bulk": "true"}))
    assert job.mode == Job.Mode.BATCH
    assert job.model_requested == "auto"
    assert job.payload["model"] == "claude-haiku-5-5"
    assert job.routing_decision_id is not None and job.routing_reason


def test_an_explicit_queue_mode_is_kept_even_for_bulk_work(principal, payload_factory):
    job = services.create(
        principal=principal, payload=payload_factory(model="auto", metadata={"bulk": "true"}), mode=Job.Mode.QUEUE
    )
    assert job.mode == Job.Mode.QUEUE


def test_an_alias_becomes_its_model_and_the_job_keeps_what_was_asked(principal, payload_factory):
    job = services.create(principal=principal, payload=payload_factory(model="complex"))
    assert job.payload["model"] == "claude-opus-5-5"
    assert job.model_requested == "complex"
    assert job.mode == Job.Mode.QUEUE


def test_auto_asks_the_classifier_and_bills_its_tokens_as_their_own_line(principal, payload_factory):
    payload = payload_factory(text="Write a detailed proof that there are infinitely many primes", model="auto")
    job = services.create(principal=principal, payload=payload)
    assert job.routing_decision.classifier_label
    classification = LedgerEntry.objects.filter(kind="classification", principal_id=principal.id)
    assert classification.count() == 1
    assert classification.get().cost_micros > 0
