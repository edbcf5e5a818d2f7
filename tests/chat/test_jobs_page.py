"""The jobs page, its live endpoint, and the status endpoint a queued answer polls."""

from __future__ import annotations

import datetime as dt
import uuid
from io import StringIO

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.utils import timezone

from claudeapp.claude import breaker
from claudeapp.conversations import services
from claudeapp.conversations.models import Message
from claudeapp.jobs import runner
from claudeapp.jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(user_factory):
    return user_factory(username="alice")


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def chat_user(transactional_db, user_factory):
    call_command("seed", stdout=StringIO())  # models, prices, routing rules
    return user_factory(username="chatter")


@pytest.fixture
def job_factory():
    def make(*, user, kind: str = "user", principal_id: int | None = None, text: str = "hello", **fields) -> Job:
        fields.setdefault("model_requested", "claude-haiku-5-5")
        return Job.objects.create(
            principal_kind=kind,
            principal_id=user.pk if principal_id is None else principal_id,
            user=user,
            payload={
                "model": fields["model_requested"],
                "max_tokens": 16,
                "messages": [{"role": "user", "content": text}],
            },
            **fields,
        )

    return make


def test_the_jobs_page_needs_a_login(client):
    for url in ("/my/jobs/", "/my/jobs/live", f"/my/jobs/{uuid.uuid4()}/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_the_jobs_page_lists_only_my_own_jobs_newest_first(alice_client, alice, user_factory, job_factory):
    older = job_factory(user=alice, text="older question")
    Job.objects.filter(pk=older.pk).update(created_at=timezone.now() - dt.timedelta(minutes=5))
    job_factory(user=alice, text="newer question")
    job_factory(user=user_factory(), text="someone else's question")
    job_factory(user=alice, kind="partner_key", principal_id=alice.pk, text="my partner key's question")
    body = alice_client.get("/my/jobs/").content.decode()
    assert "someone else" not in body
    assert "partner key" not in body
    assert body.index("newer question") < body.index("older question")


def test_the_live_endpoint_reports_status_model_cost_error_and_conversation(alice_client, alice, job_factory):
    conversation = services.create_conversation(owner_id=alice.pk)
    done = job_factory(user=alice, status="succeeded", model_used="claude-sonnet-5-5", cost_micros=12_345,
                       finished_at=timezone.now(), conversation_ref=str(conversation.public_id))  # fmt: skip
    dead = job_factory(user=alice, status="dead", last_error_type="overloaded_error", last_error_message="529 x3")
    response = alice_client.get("/my/jobs/live")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    data = response.json()
    by_id = {row["id"]: row for row in data["jobs"]}
    assert by_id[str(done.pk)]["status"] == "succeeded"
    assert by_id[str(done.pk)]["model"] == "claude-sonnet-5-5"
    assert by_id[str(done.pk)]["cost"] == "$0.0123"
    assert by_id[str(done.pk)]["finished_at"] is not None
    assert by_id[str(done.pk)]["conversation"] == str(conversation.public_id)
    assert by_id[str(dead.pk)]["last_error"] == "overloaded_error: 529 x3"
    assert data["active"] is False
    assert f'href="/c/{conversation.public_id}/"' in data["html"]
    assert "529 x3" in data["html"]


def test_the_live_endpoint_says_when_a_job_is_still_in_flight(alice_client, alice, job_factory):
    job_factory(user=alice, status="running")
    assert alice_client.get("/my/jobs/live").json()["active"] is True


def test_job_text_is_escaped_on_the_page_and_in_live_updates(alice_client, alice, job_factory):
    job_factory(user=alice, text="<script>alert(1)</script>", last_error_message="<img src=x onerror=alert(1)>")
    for body in (alice_client.get("/my/jobs/").content.decode(), alice_client.get("/my/jobs/live").json()["html"]):
        assert "<script>alert" not in body and "<img src=x" not in body
        assert "&lt;script&gt;" in body


def test_someone_elses_job_is_a_404(alice_client, alice, user_factory, job_factory):
    mine = job_factory(user=alice)
    theirs = job_factory(user=user_factory())
    assert alice_client.get(f"/my/jobs/{mine.pk}/").json()["id"] == str(mine.pk)
    assert alice_client.get(f"/my/jobs/{theirs.pk}/").status_code == 404
    assert alice_client.get(f"/my/jobs/{uuid.uuid4()}/").status_code == 404
    assert alice_client.get("/my/jobs/not-a-uuid/").status_code == 404


def test_a_message_status_is_visible_to_its_owner_only(alice_client, alice, user_factory):
    mine = services.create_conversation(owner_id=alice.pk)
    other = services.create_conversation(owner_id=user_factory().pk)
    answer = Message.objects.create(conversation=mine, role="assistant", content="**hi**", status="complete")
    theirs = Message.objects.create(conversation=other, role="assistant", content="secret", status="complete")
    data = alice_client.get(f"/c/{mine.public_id}/m/{answer.public_id}/").json()
    assert data["status"] == "complete"
    assert "<strong>hi</strong>" in data["html"]
    assert alice_client.get(f"/c/{other.public_id}/m/{theirs.public_id}/").status_code == 404
    assert alice_client.get(f"/c/{mine.public_id}/m/{theirs.public_id}/").status_code == 404  # not in this one
    assert alice_client.get(f"/c/{mine.public_id}/m/nope/").status_code == 404


def test_the_chat_sidebar_links_to_the_jobs_page(alice_client):
    assert 'href="/my/jobs/"' in alice_client.get("/").content.decode()


async def _read(response) -> str:
    return b"".join([chunk async for chunk in response.streaming_content]).decode()


@pytest.mark.django_db(transaction=True)
def test_a_turn_the_sync_gateway_could_not_answer_shows_up_as_a_job_and_its_answer_lands_later(
    client, chat_user, gateway_settings, emulator
):
    client.force_login(chat_user)
    conversation = services.create_conversation(owner_id=chat_user.pk)
    emulator.set_config(model_faults={"claude-haiku-5-5": "529"})  # Haiku has no fallback: nothing can answer
    response = client.post(
        f"/c/{conversation.public_id}/send", {"content": "tide tables?", "model": "claude-haiku-5-5"}
    )
    body = async_to_sync(_read)(response)
    assert body.strip().split("\n\n")[-1].startswith("event: queued")
    answer = Message.objects.get(conversation=conversation, role="assistant")
    status_url = f"/c/{conversation.public_id}/m/{answer.public_id}/"
    assert client.get(status_url).json()["status"] == "queued"
    [row] = client.get("/my/jobs/live").json()["jobs"]
    assert row["status"] == "queued" and row["conversation"] == str(conversation.public_id)
    assert row["prompt"] == "tide tables?"

    emulator.set_config(model_faults={"claude-haiku-5-5": None})  # Claude recovers
    breaker.reset("claude-haiku-5-5")
    runner.run(job_id=row["id"])  # what a worker does; tests/jobs runs real Celery workers

    [row] = client.get("/my/jobs/live").json()["jobs"]
    assert row["status"] == "succeeded" and row["cost_micros"] > 0 and row["finished_at"]
    data = client.get(status_url).json()
    assert data["status"] == "complete"
    assert "claude-haiku-5-5" in data["html"]
    answer.refresh_from_db()
    assert answer.content and answer.content.split()[0] in data["html"]
