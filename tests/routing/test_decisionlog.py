"""Routing decisions of stateless calls (routing/decisionlog.py): queued with an id drawn ahead from the
table's sequence, written in bulk before the request log lines that name them, the same row as one
stored at once, never colliding with one, never blocked by a rule deleted in between. Through the live
gateway: tests/api/test_decision_rows_live.py."""

from __future__ import annotations

import pytest

from claudeapp.requestlog import buffer
from claudeapp.requestlog.models import RequestLog, RequestLogSettings
from routing import decisionlog, services
from routing.models import RoutingDecision

# Everything but what differs between two decisions of the same plan by construction.
COMPARED = [
    f.attname for f in RoutingDecision._meta.concrete_fields if f.attname not in {"id", "created_at", "elapsed_ms"}
]


@pytest.fixture
def queueing():
    """Queueing on, as the request log turns it on in a web process; the flusher thread of this process
    kept out (it would write the rows on its own connection), so the test's own flush() writes them."""
    nudges: list[int] = []
    with buffer._flush_lock:
        decisionlog._rows.clear()
        decisionlog.take_with(nudges.append)
        try:
            yield nudges
        finally:
            decisionlog.take_with(None)
            decisionlog._rows.clear()


def _stored(pk: int) -> dict[str, object]:
    return RoutingDecision.objects.filter(pk=pk).values(*COMPARED).get()


def test_a_later_decision_has_its_id_at_once_and_its_row_after_the_flush_the_same_as_one_stored_at_once(
    queueing, rule_factory, make_request, django_assert_num_queries
):
    rule = rule_factory(message_regex="prove", target="complex")
    planned = services.plan(make_request("prove it", metadata={"team": "search", "n": 3}))
    now = services.decide(planned)
    later = services.decide(planned, later=True)
    assert later.decision_id is not None and later.decision_id != now.decision_id
    assert not RoutingDecision.objects.filter(pk=later.decision_id).exists()
    assert decisionlog.pending() == 1 and queueing == [1]  # the writer was told
    with django_assert_num_queries(0):  # the next ones: ids from the block drawn by the first
        more = [services.decide(services.plan(make_request(f"hello {n}")), later=True) for n in range(3)]
    assert decisionlog.flush() == 4 and decisionlog.pending() == 0
    assert _stored(later.decision_id) == _stored(now.decision_id)
    row = RoutingDecision.objects.get(pk=later.decision_id)
    assert (row.rule_id, row.metadata, row.message_excerpt) == (rule.pk, {"team": "search", "n": 3}, "prove it")
    assert RoutingDecision.objects.filter(pk__in=[d.decision_id for d in more]).count() == 3


def test_ids_drawn_ahead_never_meet_a_decision_stored_at_once(queueing, published_set, make_request):
    queued = [services.decide(services.plan(make_request()), later=True) for _ in range(3)]
    stored = [services.decide(services.plan(make_request())) for _ in range(3)]  # the sequence's next values
    assert decisionlog.flush() == 3
    ids = {d.decision_id for d in queued + stored}
    assert len(ids) == 6 and RoutingDecision.objects.filter(pk__in=ids).count() == 6


def test_with_no_writer_a_later_decision_is_stored_at_once(published_set, make_request):
    decision = services.decide(services.plan(make_request()), later=True)  # the request log is off
    assert RoutingDecision.objects.filter(pk=decision.decision_id).exists() and decisionlog.pending() == 0


def test_the_request_log_writes_queued_decisions_before_the_lines_that_read_their_prompt(
    queueing, published_set, make_request
):
    RequestLogSettings.objects.create(store_prompts=True)
    buffer.forget_settings()
    decision = services.decide(services.plan(make_request("what is two and two")), later=True)
    buffer._rows.clear()
    buffer.add({"status": "complete", "principal_kind": "user", "principal_id": 1,
                "route_decision_id": decision.decision_id})  # fmt: skip
    try:
        assert buffer.flush() == 1
    finally:
        buffer.forget_settings()
    assert RoutingDecision.objects.filter(pk=decision.decision_id).exists()
    assert RequestLog.objects.get(route_decision_id=decision.decision_id).prompt_excerpt == "what is two and two"


@pytest.mark.django_db(transaction=True)
def test_a_decision_whose_rule_is_deleted_before_the_flush_is_written_without_the_link(
    queueing, rule_factory, make_request
):
    kept = rule_factory(message_regex="keep", target="simple")
    gone = rule_factory(message_regex="prove", target="complex")
    linked = services.decide(services.plan(make_request("keep this")), later=True)
    unlinked = services.decide(services.plan(make_request("prove it")), later=True)
    gone.delete()
    assert decisionlog.flush() == 2  # the foreign key is checked at commit: autocommit here
    assert RoutingDecision.objects.get(pk=linked.decision_id).rule_id == kept.pk
    row = RoutingDecision.objects.get(pk=unlinked.decision_id)
    assert (row.rule_id, row.rule_name, row.model_id) == (None, gone.name, "claude-opus-5-5")
