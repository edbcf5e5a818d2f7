"""The fault suite (issue 12, item 8): each fault injected into a running cluster of real processes
(tests/chaos/harness.py), under load, and what must hold: nothing lost, nothing billed twice, the
product recovers on its own. The same cells, with more load, make docs/reliability.md
(scripts/reliability.py).

A process killed mid-call (a web process mid-stream or waiting on a non-streamed answer, mid-turn of a
conversation or of the chat; a worker mid-job) is billed by the in-flight reaper
(claudeapp/calls/inflight.py) from the write-ahead record its call left in Redis.
"""

from __future__ import annotations

import pytest

from tests.chaos import harness
from tests.chaos.harness import CellResult, Cluster

# The first test also pays for starting the cluster (about 30-60 s here, minutes on a loaded machine).
pytestmark = pytest.mark.timeout(900)


def _report(result: CellResult) -> str:
    return f"{result}"


def _nothing_lost_nor_billed_twice(result: CellResult) -> None:
    assert result.lost == 0, _report(result)
    assert result.double_billed == 0, _report(result)
    assert not [note for note in result.notes if "name no upstream charge" in note], _report(result)


def test_a_killed_worker_s_jobs_all_run_again_within_a_minute_and_are_billed_once(cluster: Cluster) -> None:
    result = harness.cell_worker_kill(cluster, jobs=8)

    _nothing_lost_nor_billed_twice(result)
    assert result.completed == result.jobs_sent == 8
    assert result.unbilled == 0, _report(result)  # the killed attempts' calls too, by the in-flight reaper
    # The target: every job of the killed worker runs again within 60 s (the wait's own bound).
    assert result.recovery_seconds is not None and result.recovery_seconds < 60, _report(result)
    assert any("2" in note for note in result.notes if note.startswith("attempts")), "no job was re-run"


def _each_killed_call_billed_once_and_no_hold_left(result: CellResult, calls: int) -> None:
    figures = result.extra
    _nothing_lost_nor_billed_twice(result)
    assert result.unbilled == 0, _report(result)
    assert figures["rows"] == figures["event_keys"] == calls, _report(result)  # one ledger row per killed call
    assert (figures["held"], figures["reserved"]) == (0, 0), _report(result)  # no hold outlives the reaper


def _each_stream_billed_as_delivered(result: CellResult, streams: int) -> None:
    figures = result.extra
    assert figures["charges"] == streams and figures["blind"] == 0, _report(result)  # each row names its charge
    assert figures["exact_input"], _report(result)  # message_start's input, not the bound held
    # Output as delivered at the last checkpoint: beyond message_start's 1 token per stream, within max_tokens.
    assert streams < figures["ledger_out"] < streams * harness._MAX_TOKENS, _report(result)


@pytest.mark.parametrize("surface", harness.STREAM_SURFACES)
def test_a_web_process_killed_mid_stream_has_every_stream_billed_once_and_no_hold_left(
    cluster: Cluster, surface: str
) -> None:
    result = harness.cell_web_kill_mid_stream(cluster, surface, streams=3)

    _each_killed_call_billed_once_and_no_hold_left(result, 3)
    _each_stream_billed_as_delivered(result, 3)


@pytest.mark.parametrize("surface", harness.STREAM_SURFACES)
def test_a_web_process_killed_mid_call_has_every_non_streamed_call_billed_once_at_its_bound_and_no_hold_left(
    cluster: Cluster, surface: str
) -> None:
    result = harness.cell_web_kill_mid_call(cluster, surface, streamed=False, calls=3)
    figures = result.extra

    _each_killed_call_billed_once_and_no_hold_left(result, 3)
    # No answer reached the process: each call billed blind at its bound (input bound + max_tokens), the
    # conservative side, which covers what upstream charged once its answer was ready.
    assert figures["blind"] == 3, _report(result)
    assert figures["ledger_out"] == 3 * harness._MAX_TOKENS, _report(result)
    assert figures["charges"] == 3 and figures["covered"], _report(result)


@pytest.mark.parametrize("content", ["document", "image", "thinking"])
def test_a_web_process_killed_mid_stream_bills_every_content_kind_as_delivered(cluster: Cluster, content: str) -> None:
    """The streamed kill above, for what calls carry besides text: each stream billed once, its exact input
    (a document's ~6.7k tokens a call, an image's) and the output delivered at its last checkpoint. Not tools: its
    answer is one short tool call, over before the kill this cell times by the events read."""
    result = harness.cell_web_kill_mid_call(cluster, "anthropic", streamed=True, calls=2, content=content)
    figures = result.extra

    _each_killed_call_billed_once_and_no_hold_left(result, 2)
    assert figures["charges"] == 2 and figures["blind"] == 0, _report(result)
    assert figures["exact_input"], _report(result)
    assert 2 < figures["ledger_out"] < 2 * figures["max_tokens"], _report(result)


@pytest.mark.parametrize("content", ["document", "image", "tools", "thinking"])
def test_a_web_process_killed_mid_call_bills_every_content_kind_once_at_its_own_bound(
    cluster: Cluster, content: str
) -> None:
    """The non-streamed kill above, for what calls carry besides text: a document's input is counted
    upstream before its hold (the other admission order, its write-ahead record written there), thinking
    raises max_tokens. Each killed call billed once, blind at its own bound, no hold left."""
    result = harness.cell_web_kill_mid_call(cluster, "anthropic", streamed=False, calls=2, content=content)
    figures = result.extra

    _each_killed_call_billed_once_and_no_hold_left(result, 2)
    assert figures["blind"] == 2, _report(result)
    assert figures["ledger_out"] == 2 * figures["max_tokens"], _report(result)


@pytest.mark.parametrize(
    ("content", "calls"), [("text", 4), ("document", 2), ("image", 2), ("tools", 2), ("thinking", 2)]
)
def test_a_web_process_killed_with_answered_calls_waiting_to_settle_has_each_billed_once_exactly(
    cluster: Cluster, content: str, calls: int
) -> None:
    """The replies went out; their settlements waited in one batch behind a locked budget row when the
    process died. The reaper bills each from its in-flight record: upstream's figures, once, and the budget
    takes exactly what the ledger billed (a settlement half-done before the kill would show here). For every
    content kind: the write-ahead record and the reaper read no content, and this says so."""
    result = harness.cell_web_kill_answered_unsettled(cluster, calls=calls, content=content)
    figures = result.extra

    assert figures["answered"] == calls and figures["held_back"] >= 1, _report(result)
    _nothing_lost_nor_billed_twice(result)
    assert figures["rows"] == figures["event_keys"] == calls and figures["exact"], _report(result)
    assert figures["spent"] == figures["ledger_cost"] > 0, _report(result)
    assert (figures["held"], figures["reserved"]) == (0, 0), _report(result)


@pytest.mark.parametrize("surface", harness.TURN_SURFACES)
def test_a_web_process_killed_mid_turn_has_every_turn_billed_once_no_hold_left_and_no_answer_left_streaming(
    cluster: Cluster, surface: str
) -> None:
    result = harness.cell_web_kill_mid_call(cluster, surface, streamed=True, calls=3)
    answers = result.extra["answers"]

    _each_killed_call_billed_once_and_no_hold_left(result, 3)
    _each_stream_billed_as_delivered(result, 3)
    assert len(answers) == 3, _report(result)
    # The reaper billed each under its answer and left the answer failed (retry offered), with that cost:
    # none stays "streaming" for good.
    assert {status for status, _, _ in answers} == {"failed"}, _report(result)
    assert all(cost > 0 and output > 0 for _, output, cost in answers), _report(result)


def test_redis_restarted_mid_run_calls_go_on_and_readyz_names_it(cluster: Cluster) -> None:
    result, ready = harness.cell_redis_restart(cluster, jobs=4)

    _nothing_lost_nor_billed_twice(result)
    assert ready["names_it"], ready  # /readyz: 503, failing includes "redis"
    assert set(result.statuses) == {200}, _report(result)  # limits fail open: no call refused for Redis
    assert result.completed == result.calls_sent + result.jobs_sent
    assert result.recovery_seconds is not None


def test_postgres_restarted_mid_run_answers_503_not_500_and_recovers_without_a_restart(cluster: Cluster) -> None:
    result, ready = harness.cell_postgres_restart(cluster, jobs=4)

    _nothing_lost_nor_billed_twice(result)
    assert ready["names_it"], ready  # /readyz: 503, failing includes "postgres"
    assert 500 not in result.statuses, _report(result)
    assert result.statuses[503] > 0, f"no call saw the outage: {_report(result)}"
    assert set(result.statuses) <= {200, 503}, _report(result)
    assert result.recovery_seconds is not None, _report(result)  # a call answered 200 after, same processes
    assert all(web.proc.poll() is None for web in cluster.webs)


def test_broker_down_then_back_loses_no_job(cluster: Cluster) -> None:
    result, ready = harness.cell_broker_outage(cluster, jobs=4)

    _nothing_lost_nor_billed_twice(result)
    assert ready["names_it"], ready
    assert result.completed == result.calls_sent + result.jobs_sent, _report(result)
    assert all(worker.alive() for worker in cluster.workers), "a worker died when the broker went away"


@pytest.mark.parametrize("kind", list(harness.STORMS))
def test_an_upstream_storm_is_answered_then_recovered_from(cluster: Cluster, kind: str) -> None:
    result = harness.cell_upstream_storm(cluster, kind, seconds=3.0, jobs=3)

    _nothing_lost_nor_billed_twice(result)
    assert result.refused > 0, f"no call saw the storm: {_report(result)}"
    assert result.completed == result.calls_sent - result.refused + result.jobs_sent, _report(result)
    assert result.recovery_seconds is not None, _report(result)


def test_a_burst_at_ten_times_the_rate_limit_refuses_the_excess_and_bills_the_rest(cluster: Cluster) -> None:
    result, elapsed = harness.cell_burst(cluster, factor=10)
    rpm = cluster.keys.limited_rpm

    _nothing_lost_nor_billed_twice(result)
    assert set(result.statuses) <= {200, 429}, _report(result)
    assert result.completed + result.refused == result.calls_sent == 10 * rpm
    # GCRA: a burst of `rpm`, then one more per 60/rpm seconds of the burst's own duration.
    assert rpm <= result.completed <= rpm + int(elapsed * rpm / 60) + 1, (_report(result), elapsed)
