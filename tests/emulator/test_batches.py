from __future__ import annotations

import anthropic
import pytest

from tests.emulator.conftest import params


def batch_requests(*prompts: str) -> list[dict]:
    return [{"custom_id": f"req-{i}", "params": params(text)} for i, text in enumerate(prompts)]


def test_batch_round_trip_from_in_progress_to_results(emulator_reset, anthropic_client):
    batches = anthropic_client.messages.batches
    batch = batches.create(
        requests=batch_requests("Summarise tea history", "bad one [[batch:errored]]", "late [[batch:expired]]")
    )
    assert batch.id.startswith("msgbatch_")
    assert batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 3 and batch.request_counts.succeeded == 0
    assert batch.results_url is None
    with pytest.raises(anthropic.AnthropicError):
        list(batches.results(batch.id))

    emulator_reset.advance_clock(60)
    ended = batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.ended_at is not None
    counts = ended.request_counts
    assert (counts.processing, counts.succeeded, counts.errored, counts.expired) == (0, 1, 1, 1)
    assert ended.results_url.endswith(f"/v1/messages/batches/{batch.id}/results")

    results = {line.custom_id: line.result for line in batches.results(batch.id)}
    assert results["req-0"].type == "succeeded"
    assert results["req-0"].message.usage.service_tier == "batch"
    assert "tea" in results["req-0"].message.content[0].text
    assert results["req-1"].type == "errored"
    assert results["req-1"].error.error.type == "invalid_request_error"
    assert results["req-2"].type == "expired"


def test_batch_results_are_served_as_jsonl(emulator_reset, anthropic_client, raw):
    batch = anthropic_client.messages.batches.create(requests=batch_requests("a", "b"))
    emulator_reset.advance_clock(10)
    response = raw.get(f"/v1/messages/batches/{batch.id}/results")
    assert response.headers["content-type"] == "application/x-jsonl"
    assert len(response.text.strip().splitlines()) == 2


def test_cancel_moves_the_batch_to_canceling_then_ended_with_canceled_results(emulator_reset, anthropic_client):
    batches = anthropic_client.messages.batches
    batch = batches.create(requests=batch_requests("one", "two"))
    canceled = batches.cancel(batch.id)
    assert canceled.processing_status == "canceling"
    assert canceled.cancel_initiated_at is not None
    ended = batches.retrieve(batch.id)
    assert ended.processing_status == "ended"
    assert ended.request_counts.canceled == 2
    assert {line.result.type for line in batches.results(batch.id)} == {"canceled"}


def test_delete_is_refused_while_processing_and_allowed_after(emulator_reset, anthropic_client):
    batches = anthropic_client.messages.batches
    batch = batches.create(requests=batch_requests("one"))
    with pytest.raises(anthropic.BadRequestError):
        batches.delete(batch.id)
    emulator_reset.advance_clock(10)
    deleted = batches.delete(batch.id)
    assert deleted.id == batch.id and deleted.type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        batches.retrieve(batch.id)


def test_batch_list_is_newest_first_and_paginates(emulator_reset, anthropic_client):
    batches = anthropic_client.messages.batches
    created = [batches.create(requests=batch_requests(f"b{i}")).id for i in range(3)]
    page = batches.list(limit=2)
    assert [b.id for b in page.data] == created[::-1][:2]
    assert page.has_more
    rest = batches.list(limit=2, after_id=page.last_id)
    assert [b.id for b in rest.data] == [created[0]] and not rest.has_more
    assert [b.id for b in batches.list(limit=10)] == created[::-1]


@pytest.mark.parametrize(
    ("requests", "fragment"),
    [
        ([{"custom_id": "same", "params": params("a")}, {"custom_id": "same", "params": params("b")}], "unique"),
        ([{"custom_id": "x", "params": {"model": "claude-sonnet-5-5", "messages": []}}], "requests.0.params"),
        ([{"custom_id": "x", "params": params("a", stream=True)}], "stream"),
        ([{"custom_id": "bad id!", "params": params("a")}], "custom_id"),
    ],
)
def test_invalid_batches_are_rejected(raw, requests, fragment):
    response = raw.post("/v1/messages/batches", json={"requests": requests})
    assert response.status_code == 400
    assert fragment in response.json()["error"]["message"]


def test_unknown_model_in_a_batch_becomes_an_errored_result(emulator_reset, anthropic_client):
    batches = anthropic_client.messages.batches
    batch = batches.create(requests=[{"custom_id": "m", "params": {**params("x"), "model": "claude-nope"}}])
    emulator_reset.advance_clock(10)
    (line,) = list(batches.results(batch.id))
    assert line.result.type == "errored" and line.result.error.error.type == "not_found_error"


def test_batches_belong_to_the_api_key_that_created_them(emulator_reset, anthropic_client):
    batch = anthropic_client.messages.batches.create(requests=batch_requests("mine"))
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client.with_options(api_key="someone-else").messages.batches.retrieve(batch.id)
