"""The request log: every call's ending (refusals too) queued with no query on the call, written in bulk,
shown by name in the admin, kept for the retention the operator set, prompts only when turned on."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from billing.errors import BudgetExceeded, RateLimited
from claudeapp.accounts.principals import Principal
from claudeapp.calls import observe
from claudeapp.core import logcontext
from claudeapp.requestlog import buffer, services
from claudeapp.requestlog.models import RequestLog, RequestLogSettings


@pytest.fixture(autouse=True)
def empty_buffer(request):
    buffer._rows.clear()  # rows other tests' calls left in this process
    buffer.forget_settings()
    if "transactional_db" in request.fixturenames:
        request.getfixturevalue("transactional_db")
        RequestLog.objects.all().delete()
        yield
    else:
        with buffer._flush_lock:  # the flusher thread waits: this test's own flush() writes the rows
            if "db" in request.fixturenames:
                request.getfixturevalue("db")
                # Rows the flusher thread committed on its own connection during earlier tests (outside
                # their transactions, so no rollback took them): gone for this test, inside its transaction.
                RequestLog.objects.all().delete()
            yield
    buffer._rows.clear()


def _refuse(principal: Principal, error: BaseException, request_id: str = "req_test") -> None:
    logcontext.bind(request_id=request_id, surface="api")
    try:
        observe.refused(principal=principal, requested_model="claude-haiku-5-5", error=error)
    finally:
        logcontext.clear()


def _budget_error() -> BudgetExceeded:
    return BudgetExceeded(scope="user", scope_id=1, limit_micros=10_000, spent_micros=10_000,
                          resets_at=timezone.now() + dt.timedelta(hours=1))  # fmt: skip


def test_a_refusal_is_queued_without_a_query_and_written_in_one_copy(db, user_factory, django_assert_num_queries):
    alice = user_factory(username="alice")
    principal = Principal.for_user(alice)
    with django_assert_num_queries(0):  # the call's own path: an append to the buffer, nothing else
        _refuse(principal, _budget_error(), "req_budget")
        _refuse(principal, RateLimited(retry_after_seconds=2.0), "req_limit")
    assert buffer.pending() == 2
    RequestLogSettings.objects.create()
    # The prompt switch (read at most every 10 s), then one COPY for all rows (psycopg's copy, which Django's
    # query capture does not see: the rows' arrival below is its proof).
    with django_assert_num_queries(1):
        assert buffer.flush() == 2
    rows = {r.request_id: r for r in RequestLog.objects.all()}
    assert (rows["req_budget"].status, rows["req_budget"].http_status) == ("refused", 402)
    assert (rows["req_limit"].http_status, rows["req_limit"].surface) == (429, "api")
    assert rows["req_budget"].principal_id == alice.pk and rows["req_budget"].error_type == "BudgetExceeded"


def test_prompt_text_is_kept_only_when_an_operator_turns_it_on(db, user_factory):
    from routing.models import RoutingDecision

    decision = RoutingDecision.objects.create(
        principal_kind="user", principal_id=1, requested_model="auto", message_excerpt="secret plans", model_id="m",
        mode="sync", reason="r",
    )  # fmt: skip
    fields = {"status": "complete", "principal_kind": "user", "principal_id": 1, "route_decision_id": decision.pk}
    buffer.add(dict(fields))
    buffer.flush()
    assert RequestLog.objects.get().prompt_excerpt == ""
    row = services.get_settings()
    row.store_prompts = True
    row.save()
    buffer.forget_settings()
    buffer.add(dict(fields))
    buffer.flush()
    assert sorted(RequestLog.objects.values_list("prompt_excerpt", flat=True)) == ["", "secret plans"]


def test_rows_older_than_the_retention_are_purged(db):
    now = timezone.now()
    for age in (1, 29, 31, 400):
        RequestLog.objects.create(created_at=now - dt.timedelta(days=age), principal_kind="user", principal_id=1,
                                  status="complete")  # fmt: skip
    assert services.purge_expired(now=now) == 2
    settings_row = services.get_settings()
    settings_row.retention_days = 7
    settings_row.save()
    assert services.purge_expired(now=now) == 1
    assert RequestLog.objects.count() == 1


def test_the_admin_lists_calls_by_name_and_filters_refusals(client, user_factory):
    operator = user_factory(username="operator", is_staff=True, is_superuser=True)
    alice = user_factory(username="alice")
    _refuse(Principal.for_user(alice), _budget_error(), "req_budget")
    buffer.add({
        "status": "complete", "principal_kind": "user", "principal_id": alice.pk, "model_used": "claude-haiku-5-5",
        "cost_micros": 2134, "input_tokens": 10, "output_tokens": 5, "duration_ms": 812.4,
    })  # fmt: skip
    buffer.flush()
    client.force_login(operator)
    page = client.get("/admin/requestlog/requestlog/").content.decode()
    assert f'<a href="/admin/accounts/user/{alice.pk}/change/">alice</a>' in page
    assert "$0.002134" in page and "812 ms" in page and "Refused 402" in page
    refusals = client.get("/admin/requestlog/requestlog/", {"status__exact": "refused"}).context["cl"]
    assert [r.request_id for r in refusals.result_list] == ["req_budget"]
    assert client.get("/admin/requestlog/requestlog/", {"q": "alice"}).context["cl"].result_count == 2
    by_principal = client.get("/admin/requestlog/requestlog/", {"principal": f"user:{alice.pk}", "when": "today"})
    assert by_principal.context["cl"].result_count == 2
    settings_page = client.get("/admin/requestlog/requestlogsettings/")
    assert settings_page.status_code == 302 and "/change/" in settings_page["Location"]


def test_the_flusher_thread_writes_queued_rows_on_its_own(transactional_db, settings):
    import time

    settings.REQUEST_LOG_FLUSH_SECONDS = 0.05
    buffer.add({"status": "failed", "principal_kind": "user", "principal_id": 5, "error_type": "overloaded_error"})
    deadline = time.monotonic() + 10
    while not RequestLog.objects.filter(principal_id=5).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    row = RequestLog.objects.get(principal_id=5)
    assert (row.status, row.http_status, row.error_type) == ("failed", None, "overloaded_error")


def test_record_writes_one_row_now_once_per_request_id_and_refuses_an_unknown_status(db, user_factory):
    alice = user_factory(username="alice")
    fields = {"status": "interrupted", "principal_kind": "user", "principal_id": alice.pk, "error_type": "x" * 300,
              "model_requested": "claude-haiku-5-5", "cost_micros": 1234}  # fmt: skip
    first = services.record(fields=fields, request_id="req_dead", surface="api")
    again = services.record(fields=fields, request_id="req_dead", surface="api")  # the reaper saw it twice
    assert again.pk == first.pk and RequestLog.objects.count() == 1
    row = RequestLog.objects.get()
    assert (row.status, row.http_status, row.cost_micros, len(row.error_type)) == ("interrupted", None, 1234, 100)
    assert row.get_status_display() == "Interrupted (its process died)" and buffer.pending() == 0
    with pytest.raises(ValueError, match="status must be one of"):
        services.record(fields={"status": "lost"})
    assert RequestLog.objects.count() == 1


def test_the_hourly_beat_task_purges_by_the_operators_retention(db, settings):
    from claudeapp.requestlog import tasks

    entry = settings.CELERY_BEAT_SCHEDULE["requestlog-purge"]
    assert entry == {"task": tasks.purge_request_log.name, "schedule": 3600.0}
    RequestLog.objects.create(created_at=timezone.now() - dt.timedelta(days=31), principal_kind="user",
                              principal_id=1, status="complete")  # fmt: skip
    assert tasks.purge_request_log.apply().get() == 1 and not RequestLog.objects.exists()
