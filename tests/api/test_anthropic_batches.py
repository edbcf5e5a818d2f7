"""The Message Batches API on /anthropic, through the official SDK's `client.messages.batches.*`:
holds at submission (batch price), one bill per succeeded result from its own usage, holds given
back for the rest, results in Anthropic's JSONL shape. Upstream is the emulator, whose batch clock
the tests move (docs/emulator.md, "Batches")."""

from __future__ import annotations

import threading

import anthropic
import pytest
from django.db import connection

from billing.models import Budget, LedgerEntry, Reservation
from claudeapp.api import anthropic_batches
from claudeapp.api.batch_models import AnthropicBatch
from claudeapp.core import metrics
from claudeapp.requestlog import buffer
from claudeapp.requestlog.models import RequestLog
from tests.chaos.harness import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def sdk(server, api_key: str, **options) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key=api_key, base_url=f"{server.url}/anthropic", max_retries=0, timeout=20, **options
    )


def request(custom_id: str, prompt: str = "Tell me about tide pools", model: str = "claude-haiku-5-5", **params):
    return {
        "custom_id": custom_id,
        "params": {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": prompt}], **params},
    }


@pytest.fixture
def key(partner_key_factory):
    return partner_key_factory(scopes=["messages"])


@pytest.fixture
def budget(key):
    return Budget.objects.create(scope="partner_key", scope_id=key.pk, period="month", limit_micros=10_000_000)


def end_upstream(emulator) -> None:
    emulator.advance_clock(3600)  # past batch_processing_seconds: ended the next time it is read


def test_create_holds_each_request_at_the_batch_price_and_retrieve_reports_progress(
    live_gateway, key, budget, emulator
):
    client = sdk(live_gateway, key.raw)
    batch = client.messages.batches.create(requests=[request("a"), request("b", "Name three crabs")])
    assert batch.id.startswith("msgbatch_") and batch.type == "message_batch"
    assert batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 2 and batch.results_url is None
    held = list(Reservation.objects.filter(principal_kind="partner_key", principal_id=key.pk))
    assert len(held) == 2 and all(r.batch for r in held)
    budget.refresh_from_db()
    assert budget.reserved_micros == sum(r.amount_micros for r in held) > 0
    assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"
    assert not LedgerEntry.objects.exists()
    # Our id, never upstream's.
    assert AnthropicBatch.objects.get(public_id=batch.id).upstream_id != batch.id


def test_results_are_anthropics_jsonl_and_each_success_is_billed_once_at_the_batch_price(
    live_gateway, key, budget, emulator
):
    client = sdk(live_gateway, key.raw)
    batch = client.messages.batches.create(
        requests=[request("ok-1"), request("ok-2", "Name three crabs"), request("bad", "[[batch:errored]] hi")]
    )
    end_upstream(emulator)
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.results_url.endswith(f"/{batch.id}/results")
    assert (ended.request_counts.succeeded, ended.request_counts.errored) == (2, 1)
    lines = {line.custom_id: line.result for line in client.messages.batches.results(batch.id)}
    assert set(lines) == {"ok-1", "ok-2", "bad"}
    assert lines["bad"].type == "errored" and lines["bad"].error.error.type
    entries = {e.upstream_message_id: e for e in LedgerEntry.objects.filter(kind="batch")}
    assert len(entries) == 2
    for custom_id in ("ok-1", "ok-2"):
        message = lines[custom_id].message
        assert message.usage.service_tier == "batch"
        entry = entries[message.id]
        assert entry.batch and entry.input_tokens == message.usage.input_tokens
        assert entry.output_tokens == message.usage.output_tokens
        # Upstream's own charge for the same result, from the emulator's ledger.
        (charge,) = emulator.charges(message_id=message.id)
        assert charge["batch"] and charge["usage"]["output_tokens"] == entry.output_tokens
    assert not Reservation.objects.exists()  # the errored request's hold came back
    budget.refresh_from_db()
    assert budget.reserved_micros == 0 and budget.spent_micros == sum(e.cost_micros for e in entries.values())
    # Reading the results again bills nothing twice.
    assert len(list(client.messages.batches.results(batch.id))) == 3
    assert LedgerEntry.objects.filter(kind="batch").count() == 2


def test_the_beat_settles_a_batch_nobody_reads(live_gateway, key, budget, emulator):
    batch = sdk(live_gateway, key.raw).messages.batches.create(requests=[request("only")])
    end_upstream(emulator)
    assert anthropic_batches.settle_open() == 1
    assert LedgerEntry.objects.filter(kind="batch", subject=batch.id).count() == 1
    assert AnthropicBatch.objects.get(public_id=batch.id).settled_at is not None
    assert anthropic_batches.settle_open() == 0


def test_cancel_gives_the_unprocessed_holds_back(live_gateway, key, budget, emulator):
    client = sdk(live_gateway, key.raw)
    batch = client.messages.batches.create(requests=[request(f"r{i}") for i in range(3)])
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status in ("canceling", "ended") and canceling.cancel_initiated_at is not None
    end_upstream(emulator)
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.request_counts.canceled == 3
    assert {line.result.type for line in client.messages.batches.results(batch.id)} == {"canceled"}
    assert not Reservation.objects.exists() and not LedgerEntry.objects.exists()


def test_list_pages_newest_first_and_shows_only_the_keys_own(live_gateway, key, budget, partner_key_factory):
    client = sdk(live_gateway, key.raw)
    made = [client.messages.batches.create(requests=[request("x")]).id for _ in range(3)]
    first = client.messages.batches.list(limit=2)
    assert [b.id for b in first.data] == made[::-1][:2] and first.has_more
    assert [b.id for b in client.messages.batches.list(limit=2)] == made[::-1]  # the SDK follows after_id
    other = sdk(live_gateway, partner_key_factory(scopes=["messages"]).raw)
    assert other.messages.batches.list().data == []
    with pytest.raises(anthropic.NotFoundError):
        other.messages.batches.retrieve(made[0])


def test_a_budget_that_cannot_hold_every_request_refuses_the_batch_and_holds_nothing(live_gateway, key, emulator):
    Budget.objects.create(scope="partner_key", scope_id=key.pk, period="month", limit_micros=1)
    with pytest.raises(anthropic.PaymentRequiredError) as caught:
        sdk(live_gateway, key.raw).messages.batches.create(requests=[request("a"), request("b")])
    assert caught.value.body["error"]["type"] == "billing_error"
    assert not Reservation.objects.exists() and not AnthropicBatch.objects.exists()
    assert not [e for e in emulator.stats()["recent"] if e["path"].startswith("/v1/messages/batches")]


def test_bad_requests_are_400s_naming_the_request_and_field(live_gateway, key, budget):
    client = sdk(live_gateway, key.raw)
    cases = [
        ([request("a"), request("a")], "requests.1.custom_id"),
        ([request("has space")], "requests.0.custom_id"),
        ([{"custom_id": "a", "params": {"model": "claude-haiku-5-5", "messages": []}}], "requests.0.params"),
        ([request("a", model="claude-imaginary-9")], "requests.0.params.model"),
        ([request("a", temperature=0.5)], "requests.0.params.temperature"),  # SDK 2.x: 2026-10-21
        ([request("a", stream=True)], "requests.0.params.stream"),
    ]
    for requests, field in cases:
        with pytest.raises(anthropic.BadRequestError) as caught:
            client.messages.batches.create(requests=requests)
        assert field in caught.value.message
    assert not Reservation.objects.exists() and not AnthropicBatch.objects.exists()
    # Under 2023-06-01 sampling parameters are allowed, and the version goes upstream with the batch.
    older = sdk(live_gateway, key.raw, default_headers={"anthropic-version": "2023-06-01"})
    assert older.messages.batches.create(requests=[request("a", temperature=0.5)]).processing_status == "in_progress"


def test_results_before_the_end_are_refused(live_gateway, key, budget):
    client = sdk(live_gateway, key.raw)
    batch = client.messages.batches.create(requests=[request("a")])
    with pytest.raises(anthropic.AnthropicError):
        list(client.messages.batches.results(batch.id))  # the SDK sees no results_url yet
    with pytest.raises(anthropic.BadRequestError):
        client.get(f"/v1/messages/batches/{batch.id}/results", cast_to=object)


def test_delete_refuses_a_batch_still_processing_and_deletes_an_ended_one_after_billing_it(
    live_gateway, key, budget, emulator, partner_key_factory
):
    client = sdk(live_gateway, key.raw)
    batch = client.messages.batches.create(requests=[request("a"), request("b", "Name three crabs")])
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.batches.delete(batch.id)
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert "still processing" in caught.value.message and "Cancel it first" in caught.value.message
    assert AnthropicBatch.objects.filter(public_id=batch.id).exists()
    # Nobody else's key can delete it (reported missing, as for retrieve).
    with pytest.raises(anthropic.NotFoundError):
        sdk(live_gateway, partner_key_factory(scopes=["messages"]).raw).messages.batches.delete(batch.id)

    end_upstream(emulator)  # ended, and never read: delete settles it first
    deleted = client.messages.batches.delete(batch.id)
    assert (deleted.id, deleted.type) == (batch.id, "message_batch_deleted")
    assert LedgerEntry.objects.filter(kind="batch", subject=batch.id).count() == 2  # the bills outlive the batch
    assert not Reservation.objects.exists()
    assert not AnthropicBatch.objects.filter(public_id=batch.id).exists()
    deletes = [e for e in emulator.stats()["recent"] if e["method"] == "DELETE"]
    assert [(e["path"], e["status"]) for e in deletes] == [("/v1/messages/batches/{batch_id}", 200)]  # gone upstream
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(batch.id)
    assert client.messages.batches.list().data == []


# --- the request log: one line per settled request, surface `batches`, under the batch's id

ENDINGS = {  # custom_id -> (prompt, the line's status, error type); a canceled request never ran: no line
    "ok": ("Tell me about tide pools", "complete", None),
    "bad": ("[[batch:errored:invalid_request_error]] hi", "failed", "invalid_request_error"),
    "late": ("[[batch:expired]] hi", "failed", "batch_expired"),
    "stop": ("[[batch:canceled]] hi", None, None),
}


def test_each_settled_request_is_one_request_log_line_with_what_the_ledger_billed(live_gateway, key, budget, emulator):
    buffer._rows.clear()  # rows other tests' calls left in this process
    client = sdk(live_gateway, key.raw)
    batch = client.messages.batches.create(requests=[request(cid, prompt) for cid, (prompt, *_) in ENDINGS.items()])
    end_upstream(emulator)
    # A partner's read settles it, in the live gateway, under the read's own request id: not the lines'.
    client.messages.batches.retrieve(batch.id, extra_headers={"x-request-id": "req_batch_reader"})
    lines = RequestLog.objects.filter(request_id=batch.id)
    wait_until(lambda: lines.count() == 3, timeout=20, what="the batch's request log lines")

    ours = AnthropicBatch.objects.get(public_id=batch.id)
    entry = LedgerEntry.objects.get(kind="batch", subject=batch.id)
    by_status = {(line.status, line.error_type or None): line for line in lines}
    assert set(by_status) == {(status, error) for _, status, error in ENDINGS.values() if status}
    for line in lines:
        assert (line.surface, line.principal_kind, line.principal_id) == ("batches", "partner_key", key.pk)
        assert (line.upstream_request_id, line.model_requested) == (ours.upstream_id, "claude-haiku-5-5")
        assert line.duration_ms is None
    done = by_status[("complete", None)]
    assert (done.http_status, done.model_used) == (200, entry.model_id)
    billed = (entry.input_tokens, entry.output_tokens, entry.cache_read_tokens, entry.cost_micros)
    assert (done.input_tokens, done.output_tokens, done.cache_read_tokens, done.cost_micros) == billed
    assert done.cache_write_tokens == entry.cache_write_5m_tokens + entry.cache_write_1h_tokens and entry.cost_micros
    for key_ in (("failed", "invalid_request_error"), ("failed", "batch_expired")):
        failed = by_status[key_]
        assert (failed.http_status, failed.cost_micros, failed.output_tokens) == (None, 0, 0)
    assert not RequestLog.objects.filter(request_id="req_batch_reader").exists()

    anthropic_batches.settle(ours)  # settled again (the beat after a read): every row is settled, no line
    assert buffer.pending() == 0 and LedgerEntry.objects.filter(kind="batch").count() == 1


def test_a_read_and_the_beat_settling_at_once_log_each_request_once(live_gateway, key, budget, emulator):
    buffer._rows.clear()
    batch = sdk(live_gateway, key.raw).messages.batches.create(requests=[request(f"r{i}") for i in range(4)])
    end_upstream(emulator)
    before = (
        metrics.registry().get_sample_value(
            "claudeapp_requests_total", {"surface": "batches", "status": "complete", "model": "claude-haiku-5-5"}
        )
        or 0.0
    )
    barrier = threading.Barrier(2)

    def settle(step) -> None:
        barrier.wait()
        try:
            step()
        finally:
            connection.close()

    def read() -> None:
        anthropic_batches.refresh(AnthropicBatch.objects.get(public_id=batch.id))

    threads = [threading.Thread(target=settle, args=(step,)) for step in (read, anthropic_batches.settle_open)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    buffer.flush()
    assert RequestLog.objects.filter(request_id=batch.id, surface="batches", status="complete").count() == 4
    assert LedgerEntry.objects.filter(kind="batch", subject=batch.id).count() == 4
    after = metrics.registry().get_sample_value(
        "claudeapp_requests_total", {"surface": "batches", "status": "complete", "model": "claude-haiku-5-5"}
    )
    assert after - before == 4


def test_every_content_type_in_a_batch_is_billed_once_at_upstreams_own_usage(live_gateway, key, budget, emulator):
    """The reconciliation matrix's contents (tests/api/test_reconciliation.py) as one batch's requests: each
    result billed once, at the batch price, with the usage upstream charged for it (cache fields included)."""
    from tests.api.test_reconciliation import CONTENTS, ENDINGS, anthropic_body
    from tests.fixtures.reconcile import USAGE_FIELDS

    client = sdk(live_gateway, key.raw)
    requests = []
    for content in CONTENTS:
        params = anthropic_body(content, ENDINGS["complete"], stream=False)
        params.pop("stream")
        requests.append({"custom_id": content, "params": params})
    batch = client.messages.batches.create(requests=requests)
    held = {r.amount_micros for r in Reservation.objects.filter(principal_kind="partner_key", principal_id=key.pk)}
    end_upstream(emulator)
    results = {line.custom_id: line.result for line in client.messages.batches.results(batch.id)}

    assert {custom_id: result.type for custom_id, result in results.items()} == dict.fromkeys(CONTENTS, "succeeded")
    blocks = {custom_id: [block.type for block in result.message.content] for custom_id, result in results.items()}
    assert "tool_use" in blocks["tools"] and blocks["thinking"][0] == "thinking", blocks
    for content, result in results.items():
        message = result.message
        (entry,) = LedgerEntry.objects.filter(kind="batch", upstream_message_id=message.id)
        (charge,) = emulator.charges(message_id=message.id)
        assert charge["batch"] and entry.batch, content
        billed = {
            "input_tokens": entry.input_tokens,
            "output_tokens": entry.output_tokens,
            "cache_creation_input_tokens": entry.cache_write_5m_tokens + entry.cache_write_1h_tokens,
            "cache_read_input_tokens": entry.cache_read_tokens,
        }
        assert billed == {field: int(charge["usage"].get(field) or 0) for field in USAGE_FIELDS}, content
        assert entry.cost_micros <= max(held), content  # never past the hold its request was admitted under
    assert not Reservation.objects.exists()
    budget.refresh_from_db()
    spent = sum(LedgerEntry.objects.filter(kind="batch", subject=batch.id).values_list("cost_micros", flat=True))
    assert budget.reserved_micros == 0 and budget.spent_micros == spent > 0
