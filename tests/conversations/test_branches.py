"""Edit and regenerate: every version is kept as a branch, only the branch on screen goes upstream,
and each regenerate or edit is one billed call of its own."""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import connection
from django.test import AsyncClient, Client

from billing.models import LedgerEntry, Reservation
from claudeapp.accounts.principals import Principal
from claudeapp.calls import settlement
from claudeapp.conversations import branches, outcomes, selectors, services
from claudeapp.conversations.errors import InvalidTurn
from claudeapp.conversations.models import Conversation, Message


def _answered(conversation: Conversation, question: str, answer: str) -> tuple[Message, Message]:
    user, reply = services.start_turn(conversation=conversation, user_text=question, model_requested="auto")
    Message.objects.filter(pk=reply.pk).update(content=answer, status=Message.Status.COMPLETE)
    reply.refresh_from_db()
    return user, reply


def _texts(conversation: Conversation) -> list[str]:
    conversation.refresh_from_db()
    return [m.content for m in selectors.active_path(conversation)]


@pytest.fixture
def conversation(user_factory, db):
    return services.create_conversation(owner_id=user_factory().pk)


@pytest.mark.django_db
def test_turns_chain_each_message_to_the_one_before(conversation):
    q1, a1 = _answered(conversation, "first", "one")
    q2, a2 = _answered(conversation, "second", "two")
    assert (q1.parent_id, a1.parent_id, q2.parent_id, a2.parent_id) == (None, q1.pk, a1.pk, q2.pk)
    conversation.refresh_from_db()
    assert conversation.active_leaf_id == a2.pk
    assert _texts(conversation) == ["first", "one", "second", "two"]


@pytest.mark.django_db
def test_an_edit_starts_a_branch_and_the_old_one_can_be_switched_back_to(conversation):
    _answered(conversation, "first", "one")
    q2, _ = _answered(conversation, "second", "two")
    _answered(conversation, "third", "three")

    edited, answer = services.start_edit(
        conversation=conversation, message_id=str(q2.public_id), user_text="second, edited", model_requested="auto"
    )
    assert edited.parent_id == q2.parent_id and answer.parent_id == edited.pk
    assert _texts(conversation) == ["first", "one", "second, edited", ""]
    assert Message.objects.filter(conversation=conversation).count() == 8  # nothing was deleted

    thread = selectors.thread(conversation)
    edited_item = thread[2]
    assert edited_item.branches == branches.Branches(index=2, count=2, previous_id=str(q2.public_id), next_id=None)
    assert thread[0].branches is None and thread[1].branches is None

    services.switch_branch(conversation=conversation, message_id=str(q2.public_id))
    assert _texts(conversation) == ["first", "one", "second", "two", "third", "three"]  # down to the newest end
    assert selectors.thread(conversation)[2].branches.index == 1


@pytest.mark.django_db
def test_editing_the_first_question_makes_a_second_root(conversation):
    q1, _ = _answered(conversation, "first", "one")
    services.start_edit(
        conversation=conversation, message_id=str(q1.public_id), user_text="again", model_requested="auto"
    )
    assert _texts(conversation) == ["again", ""]
    assert selectors.thread(conversation)[0].branches.count == 2


@pytest.mark.django_db
def test_a_regenerated_answer_is_a_sibling_of_the_first_under_the_same_question(conversation):
    q1, a1 = _answered(conversation, "first", "one")
    question, answer = services.start_regenerate(
        conversation=conversation, message_id=str(a1.public_id), model_requested="claude-haiku-5-5"
    )
    assert question.pk == q1.pk and answer.parent_id == q1.pk
    assert answer.model_requested == "claude-haiku-5-5" and answer.status == Message.Status.PENDING
    item = selectors.thread(conversation)[1]
    assert (item.branches.index, item.branches.count, item.branches.previous_id) == (2, 2, str(a1.public_id))


@pytest.mark.django_db
def test_a_message_of_another_conversation_or_a_bad_id_is_refused_naming_the_field(conversation, user_factory):
    other = services.create_conversation(owner_id=user_factory(username="other").pk)
    _, theirs = _answered(other, "secret", "answer")
    _, a1 = _answered(conversation, "mine", "answer")
    for call, field in [
        (lambda: services.start_regenerate(conversation=conversation, message_id=str(theirs.public_id),
                                           model_requested="auto"), "regenerate"),
        (lambda: services.start_edit(conversation=conversation, message_id="not-a-uuid", user_text="x",
                                     model_requested="auto"), "edit_of"),
        (lambda: services.start_edit(conversation=conversation, message_id=str(a1.public_id), user_text="x",
                                     model_requested="auto"), "edit_of"),  # an answer is not a question
        (lambda: services.switch_branch(conversation=conversation, message_id=str(theirs.public_id)), "message"),
    ]:  # fmt: skip
        with pytest.raises(InvalidTurn) as refused:
            call()
        assert refused.value.field == field
    assert _texts(conversation) == ["mine", "answer"]


@pytest.mark.django_db
def test_a_streaming_answer_cannot_be_regenerated(conversation):
    _, answer = services.start_turn(conversation=conversation, user_text="hi", model_requested="auto")
    with pytest.raises(InvalidTurn, match="still being written"):
        services.start_regenerate(conversation=conversation, message_id=str(answer.public_id), model_requested="auto")


@pytest.mark.django_db
def test_the_thread_is_read_in_one_query(conversation, django_assert_num_queries):
    for n in range(5):
        _answered(conversation, f"q{n}", f"a{n}")
    conversation.refresh_from_db()
    with django_assert_num_queries(1):
        assert len(selectors.thread(conversation)) == 10


def test_rows_from_before_the_tree_read_as_one_chain():
    rows = [Message(pk=n, role="user" if n % 2 else "assistant", content=str(n)) for n in range(1, 5)]
    assert [m.pk for m in branches.path_to(rows, None)] == [1, 2, 3, 4]
    assert [item.branches for item in branches.thread(rows, None)] == [None] * 4


@pytest.mark.django_db(transaction=True)
def test_the_linking_migration_chains_existing_rows(user_factory):
    """0003 links every conversation's rows oldest first and points the conversation at the newest."""
    from django.db.migrations.executor import MigrationExecutor

    conversation = services.create_conversation(owner_id=user_factory().pk)
    rows = [Message.objects.create(conversation=conversation, role=r, content=c)
            for r, c in [("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "d")]]  # fmt: skip
    Message.objects.filter(conversation=conversation).update(parent=None)
    Conversation.objects.filter(pk=conversation.pk).update(active_leaf=None)
    executor = MigrationExecutor(connection)
    migration = executor.loader.get_migration("conversations", "0003_message_branches")
    sql = migration.operations[-1].sql
    with connection.cursor() as cursor:
        cursor.execute(sql)
    parents = list(Message.objects.filter(conversation=conversation).order_by("id").values_list("parent_id", flat=True))
    assert parents == [None, rows[0].pk, rows[1].pk, rows[2].pk]
    conversation.refresh_from_db()
    assert conversation.active_leaf_id == rows[3].pk


@pytest.mark.django_db(transaction=True)
def test_only_the_active_branch_is_sent_upstream(chat_user):
    """The spec the pipeline sends (prepared.spec) holds the branch on screen, not the other versions.
    The hold is given back at the end, as no call is made here."""
    conversation = services.create_conversation(owner_id=chat_user.pk)
    _answered(conversation, "first", "one")
    q2, _ = _answered(conversation, "old second", "old two")
    services.start_edit(conversation=conversation, message_id=str(q2.public_id), user_text="new second",
                        model_requested="auto")  # fmt: skip
    Message.objects.filter(conversation=conversation, content="").update(content="new two", status="complete")

    prepared = outcomes.prepare(
        principal=Principal.for_user(chat_user),
        conversation_id=conversation.pk,
        user_text="third",
        model_choice="claude-haiku-5-5",
        retry_of=None,
        max_tokens=256,
    )
    try:
        sent = [m["content"] for m in prepared.spec.messages]
        assert sent == ["first", "one", "new second", "new two", "third"]
    finally:
        settlement.abandon(admission=prepared.admission)
    assert not Reservation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_regenerate_sends_the_question_again_without_the_answers_it_replaces(chat_user):
    conversation = services.create_conversation(owner_id=chat_user.pk)
    _answered(conversation, "first", "one")
    _, a2 = _answered(conversation, "second", "two")
    prepared = outcomes.prepare(
        principal=Principal.for_user(chat_user),
        conversation_id=conversation.pk,
        user_text="",
        model_choice="claude-haiku-5-5",
        retry_of=None,
        regenerate=str(a2.public_id),
        max_tokens=256,
        think=True,
    )
    try:
        assert [m["content"] for m in prepared.spec.messages] == ["first", "one", "second"]
        assert prepared.spec.extra == {"thinking": {"type": "enabled", "budget_tokens": 2048}}
        assert prepared.spec.max_tokens == 256 + 2048  # the thinking budget comes on top of the answer's
    finally:
        settlement.abandon(admission=prepared.admission)


# The send endpoint, end to end (emulator upstream): each edit and regenerate is one billed call.


async def _send(client: AsyncClient, conversation: Conversation, **fields) -> list[tuple[str, dict]]:
    response = await client.post(f"/c/{conversation.public_id}/send", fields)
    assert response.status_code == 200, response.content
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()
    events = []
    for frame in body.strip().split("\n\n"):
        name, data = frame.split("\n", 1)
        events.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events


@pytest.fixture
def chat_aclient(chat_user):
    client = AsyncClient()
    client.force_login(chat_user)
    return client, services.create_conversation(owner_id=chat_user.pk)


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("gateway_settings")
async def test_edit_and_regenerate_through_the_send_endpoint_bill_one_call_each(chat_aclient, aclose_loop_clients):
    client, conversation = chat_aclient

    first = await _send(client, conversation, content="Tell me about tide pools", model="claude-haiku-5-5")
    assert first[0][0] == "start" and first[0][1]["title"] == "Tell me about tide pools"
    question_id = first[0][1]["question_id"]
    answer_id = first[-1][1]["message_id"]

    again = await _send(client, conversation, regenerate=answer_id, model="claude-sonnet-5-5")
    assert again[-1][0] == "done" and again[0][1]["question_id"] == question_id
    regenerated = await Message.objects.aget(public_id=again[-1][1]["message_id"])
    assert regenerated.model_used == "claude-sonnet-5-5" and regenerated.parent_id is not None

    edited = await _send(client, conversation, content="Tell me about rock pools", edit_of=question_id,
                         model="claude-haiku-5-5")  # fmt: skip
    assert edited[-1][0] == "done" and edited[0][1]["question_id"] != question_id

    answers = [m async for m in Message.objects.filter(conversation=conversation, role="assistant")]
    assert len(answers) == 3 and all(a.cost_micros > 0 for a in answers)
    entries = [e async for e in LedgerEntry.objects.filter(kind="message")]
    assert sorted(e.event_key for e in entries) == sorted(f"message:{a.public_id}" for a in answers)
    assert not await Reservation.objects.aexists()

    bad = await client.post(f"/c/{conversation.public_id}/send", {"regenerate": question_id})  # a question
    assert bad.status_code == 400 and json.loads(bad.content)["error"]["field"] == "regenerate"
    assert await Message.objects.filter(conversation=conversation).acount() == 5  # 2 + 1 regenerated + 2 edited


@pytest.mark.django_db
def test_the_branch_endpoint_switches_and_answers_with_the_thread(conversation):
    q1, _ = _answered(conversation, "first", "one")
    services.start_edit(conversation=conversation, message_id=str(q1.public_id), user_text="other",
                        model_requested="auto")  # fmt: skip
    client = Client()
    client.force_login(conversation.owner)
    response = client.post(f"/c/{conversation.public_id}/branch", {"message": str(q1.public_id)})
    assert response.status_code == 200
    html = response.content.decode()
    assert "first" in html and "other" not in html and "1/2" in html
    assert _texts(conversation) == ["first", "one"]
    bad = client.post(f"/c/{conversation.public_id}/branch", {"message": "nope"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "message"
    stranger = Client()
    stranger.force_login(conversation.owner.__class__.objects.create(username="stranger"))
    assert stranger.post(f"/c/{conversation.public_id}/branch", {"message": str(q1.public_id)}).status_code == 404
    thread = client.get(f"/c/{conversation.public_id}/thread")
    assert thread.status_code == 200 and "first" in thread.content.decode()


@pytest.mark.django_db
def test_a_search_hit_on_a_branch_not_on_screen_opens_that_branch(conversation, client):
    _answered(conversation, "first", "one")
    q2, _ = _answered(conversation, "second", "two")
    _, hidden_answer = _answered(conversation, "third", "needle in the old branch")
    services.start_edit(
        conversation=conversation, message_id=str(q2.public_id), user_text="edited", model_requested="auto"
    )
    assert "needle in the old branch" not in _texts(conversation)

    client.force_login(conversation.owner)
    url = f"/c/{conversation.public_id}/"
    page = client.get(url, {"show": str(hidden_answer.public_id)})
    assert page.status_code == 200 and f'id="m-{hidden_answer.public_id}"' in page.content.decode()
    assert "needle in the old branch" in _texts(conversation)

    on_path = selectors.active_path(conversation)[0]
    before = conversation.active_leaf_id
    for show in (str(on_path.public_id), "not-a-message", str(uuid.uuid4())):  # nothing to switch: nothing moves
        assert client.get(url, {"show": show}).status_code == 200
        conversation.refresh_from_db()
        assert conversation.active_leaf_id == before
