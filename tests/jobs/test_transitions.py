"""Job status changes: one module of guarded functions, its table enforced, the chat answer written by
an explicit terminal hook inside the job's transaction, and no other module assigning Job.status."""

from __future__ import annotations

import ast
import datetime as dt
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from claudeapp.jobs import publish, transitions
from claudeapp.jobs.errors import InvalidTransition
from claudeapp.jobs.models import Job, MessageBatch
from claudeapp.jobs.upstream import Failure

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FAILURE = Failure(False, None, 400, "invalid_request_error", "refused", "req_1")
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def quiet_queue_at_teardown() -> Iterator[None]:
    """No worker runs in this module: the table tests need no database at all (overrides the conftest's)."""
    yield


# --- the table


def _call(action: str, job: Job) -> None:
    """Run the transition function named `action` on `job` with plausible arguments."""
    arguments: dict[str, Any] = {
        "start_attempt": {"job": job, "now": NOW},
        "take_into_batch": {"jobs": [job], "batch": MessageBatch(model="m"), "now": NOW, "lease": dt.timedelta(1)},
        "succeed": {"job": job, "result": {}, "usage": {}, "model_used": "m", "cost_micros": 0},
        "retry_later": {"job": job, "failure": FAILURE, "delay": 1.0},
        "wait_for_room": {"job": job, "failure": FAILURE, "delay": 1.0},
        "recover_lease": {"job": job, "now": NOW},
        "wait_for_batch": {"job": job, "failure": FAILURE, "refund": False},
        "fail": {"job": job, "failure": FAILURE},
        "bury": {"job": job, "failure": FAILURE},
        "cancel": {"job": job},
        "requeue": {"job": job},
        "discard": {"job": job},
    }[action]
    getattr(transitions, action)(**arguments)


def test_every_transition_in_the_table_has_its_function():
    for action in transitions.TRANSITIONS:
        function = getattr(transitions, action)
        params = inspect.signature(function).parameters.values()
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params), action


PAIRS = [(action, status) for action in transitions.TRANSITIONS for status in Job.Status.values]


@pytest.mark.parametrize(("action", "status"), PAIRS, ids=[f"{a}-from-{s}" for a, s in PAIRS])
def test_the_table_decides_every_status_and_transition(action, status):
    job = Job(status=status, mode=Job.Mode.BATCH, attempts=1)  # never saved: the guard runs before any write
    if status in transitions.TRANSITIONS[action].sources:
        transitions.check(job=job, action=action)  # allowed (the functions call this first)
        return
    with pytest.raises(InvalidTransition) as refused:
        _call(action, job)
    assert refused.value.status == status
    assert job.status == status


@pytest.mark.parametrize("mode", Job.Mode.values)
def test_cancel_takes_a_running_job_only_from_a_message_batch(mode):
    job = Job(status=Job.Status.RUNNING, mode=mode)
    if mode == Job.Mode.BATCH:
        transitions.check(job=job, action="cancel")
    else:
        with pytest.raises(InvalidTransition, match="Cannot cancel a job that is running"):
            transitions.check(job=job, action="cancel")


def test_the_table_covers_every_status_and_only_terminal_states_end():
    targets = {rule.target for rule in transitions.TRANSITIONS.values()}
    sources = set().union(*(rule.sources for rule in transitions.TRANSITIONS.values()))
    assert sources == set(Job.Status.values)
    assert targets - {None} == set(Job.Status.values)
    # Nothing leaves a terminal state except the operator's requeue and discard.
    for action, rule in transitions.TRANSITIONS.items():
        if rule.sources & set(Job.TERMINAL):
            assert action in ("requeue", "discard"), action


def test_tasks_are_published_by_names_celery_knows():
    from claudeapp.celery import app
    from claudeapp.jobs import tasks  # noqa: F401  (registers them, as the worker's autodiscovery does)

    assert {publish.RUN_JOB, publish.DELIVER_WEBHOOK} <= set(app.tasks)


# --- the chat answer: an explicit hook, in the job's transaction


@pytest.fixture
def chat_job(transactional_db, user_factory):
    from claudeapp.conversations.models import Conversation, Message

    user = user_factory()
    conversation = Conversation.objects.create(owner=user, title="t")
    answer = Message.objects.create(
        conversation=conversation, role=Message.Role.ASSISTANT, status=Message.Status.QUEUED
    )
    job = Job.objects.create(
        principal_kind="user", principal_id=user.pk, user=user, payload={"model": "m"}, model_requested="m",
        status=Job.Status.RUNNING, attempts=1, message_ref=str(answer.public_id),
        conversation_ref=str(conversation.public_id),
    )  # fmt: skip
    answer.job_id = job.pk
    answer.save(update_fields=["job_id"])
    return job, answer


def _succeed(job: Job) -> None:
    transitions.succeed(
        job=job,
        result={"content": [{"type": "text", "text": "Hello from the queue."}], "stop_reason": "end_turn"},
        usage={"input_tokens": 11, "output_tokens": 5},
        model_used="claude-haiku-5-5",
        cost_micros=123,
        upstream_request_id="req_42",
    )


def test_a_succeeded_job_writes_its_chat_answer_inside_its_own_transaction(chat_job):
    from claudeapp.conversations.models import Conversation, Message

    job, answer = chat_job
    with transaction.atomic():
        _succeed(Job.objects.select_for_update().get(pk=job.pk))
        answer.refresh_from_db()
        assert answer.status == Message.Status.COMPLETE  # before the commit: the same transaction wrote it
    answer.refresh_from_db()
    assert (answer.content, answer.input_tokens, answer.output_tokens) == ("Hello from the queue.", 11, 5)
    assert (answer.cost_micros, answer.upstream_request_id, answer.stop_reason) == (123, "req_42", "end_turn")
    assert Conversation.objects.get(pk=answer.conversation_id).last_model == "claude-haiku-5-5"


@pytest.mark.parametrize("action", ["fail", "bury", "cancel"])
def test_a_job_that_ends_without_an_answer_says_why_in_the_chat(chat_job, action):
    from claudeapp.conversations.models import Message

    job, answer = chat_job
    Job.objects.filter(pk=job.pk).update(mode=Job.Mode.BATCH)  # cancel takes a running job only from a batch
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        _call(action, locked)
    answer.refresh_from_db()
    assert answer.status == Message.Status.FAILED
    assert answer.error_message.startswith(f"The background answer {locked.status}")


def test_a_rolled_back_transition_writes_no_chat_answer(chat_job):
    from claudeapp.conversations.models import Message

    job, answer = chat_job
    with pytest.raises(RuntimeError), transaction.atomic():
        _succeed(Job.objects.select_for_update().get(pk=job.pk))
        raise RuntimeError("the settlement after it failed")
    answer.refresh_from_db()
    job.refresh_from_db()
    assert (answer.status, answer.content, job.status) == (Message.Status.QUEUED, "", Job.Status.RUNNING)


def test_saving_a_job_outside_the_transitions_writes_nothing_no_signal_is_listening(chat_job):
    from claudeapp.conversations.models import Message

    job, answer = chat_job
    job.status, job.result = Job.Status.SUCCEEDED, {"content": [{"type": "text", "text": "sneaky"}]}
    job.save()  # what the old post_save receiver reacted to
    answer.refresh_from_db()
    assert answer.status == Message.Status.QUEUED


def test_the_hooks_are_the_setting(chat_job, settings):
    from claudeapp.conversations.models import Message

    settings.JOBS_TERMINAL_HOOKS = []
    job, answer = chat_job
    with transaction.atomic():
        _succeed(Job.objects.select_for_update().get(pk=job.pk))
    answer.refresh_from_db()
    assert answer.status == Message.Status.QUEUED


def test_a_requeued_job_runs_again_with_fresh_attempts(chat_job):
    job, _ = chat_job
    with transaction.atomic():
        transitions.bury(job=Job.objects.select_for_update().get(pk=job.pk), failure=FAILURE)
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        transitions.requeue(job=locked)
    job.refresh_from_db()
    assert (job.status, job.attempts, job.finished_at, job.last_error_type) == (
        Job.Status.QUEUED, 0, None, "invalid_request_error",
    )  # fmt: skip
    assert job.enqueued_at is not None and job.enqueued_at <= timezone.now()


# --- nobody else writes Job.status

SCANNED = ("claudeapp", "routing", "billing")
ALLOWED_FILES = {Path("claudeapp/jobs/transitions.py"), Path("claudeapp/jobs/models.py")}
WRITE_CALLS = {"update", "create", "get_or_create", "update_or_create", "bulk_create", "Job", "DeadJob"}


def job_status_writes(source: str) -> list[int]:
    """Lines that set a Job's status: an assignment to `.status`, or `status=` given to a write, whose
    value is not another model's Status (MessageBatch.Status, Message.Status...). Only in modules that
    import Job: elsewhere `.status` belongs to something else."""
    tree = ast.parse(source)
    imports = [alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names]
    if not {"Job", "DeadJob"} & set(imports):
        return []
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target, value in _pairs(targets, node.value):
                if isinstance(target, ast.Attribute) and target.attr == "status" and not _other_status(value):
                    lines.append(node.lineno)
        elif isinstance(node, ast.Call) and _call_name(node) in WRITE_CALLS:
            for keyword in node.keywords:
                if keyword.arg == "status" and not _other_status(keyword.value):
                    lines.append(node.lineno)
    return lines


def _pairs(targets: list[ast.expr], value: ast.expr | None) -> Iterator[tuple[ast.expr, ast.expr | None]]:
    for target in targets:
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
            yield from zip(target.elts, value.elts, strict=True)
        elif isinstance(target, ast.Tuple):
            yield from ((element, None) for element in target.elts)
        else:
            yield target, value


def _other_status(value: ast.expr | None) -> bool:
    if value is None:
        return False
    text = ast.unparse(value)
    return ".Status." in text and "Job.Status" not in text


def _call_name(node: ast.Call) -> str:
    return node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")


def test_the_scanner_finds_the_writes_it_is_meant_to_find():
    bad = (
        "from claudeapp.jobs.models import Job\n"
        "job.status = Job.Status.DEAD\n"
        "job.status, job.finished_at = status, now\n"
        "Job.objects.filter(pk=1).update(status=Job.Status.QUEUED)\n"
        "Job(status='running')\n"
    )
    fine = (
        "from claudeapp.jobs.models import Job, MessageBatch\n"
        "Job.objects.filter(status=Job.Status.RUNNING).update(lease_expires_at=None)\n"
        "batch.status = MessageBatch.Status.ENDED if done else MessageBatch.Status.IN_PROGRESS\n"
        "MessageBatch.objects.filter(pk=1).update(status=MessageBatch.Status.DONE)\n"
    )
    assert job_status_writes(bad) == [2, 3, 4, 5]
    assert job_status_writes(fine) == []


def test_no_module_outside_transitions_assigns_job_status():
    offenders = []
    for package in SCANNED:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            relative = path.relative_to(PROJECT_ROOT)
            if relative in ALLOWED_FILES or "migrations" in relative.parts:
                continue
            offenders += [f"{relative}:{line}" for line in job_status_writes(path.read_text())]
    assert offenders == []
