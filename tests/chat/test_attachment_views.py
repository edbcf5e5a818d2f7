"""Upload, read back and discard attachments from the composer: limits refused with a 4xx naming the
field, another person's file a 404, nothing served as something that could run."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from claudeapp.attachments import services
from claudeapp.attachments.errors import AttachmentRefused
from claudeapp.attachments.models import Attachment
from tests.fixtures import files

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(user_factory):
    return user_factory(username="alice")


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def upload(client, name, data, content_type="application/octet-stream"):
    return client.post("/attachments/", {"file": SimpleUploadedFile(name, data, content_type=content_type)})


def test_an_image_uploads_and_comes_back_to_its_owner_only(alice_client, alice, client, user_factory):
    response = upload(alice_client, "photo.png", files.png(40, 30), "image/png")
    assert response.status_code == 201
    body = response.json()
    assert (body["kind"], body["media_type"], body["filename"]) == ("image", "image/png", "photo.png")
    assert body["tokens_estimate"] == 2  # 40 x 30 / 750, rounded up
    attachment = Attachment.objects.get(public_id=body["id"])
    assert (attachment.owner_id, attachment.message_id, attachment.width) == (alice.pk, None, 40)

    got = alice_client.get(body["url"])
    assert got.status_code == 200 and got.content == files.png(40, 30)
    assert got["Content-Type"] == "image/png"
    assert got["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in got["Content-Security-Policy"]

    client.force_login(user_factory(username="mallory"))
    assert client.get(body["url"]).status_code == 404
    assert client.post(body["url"] + "discard").status_code == 404


def test_a_text_file_is_served_as_plain_text_whatever_it_holds(alice_client):
    body = upload(alice_client, "page.html", b"<script>alert(1)</script>", "text/html").json()
    got = alice_client.get(body["url"])
    assert got["Content-Type"] == "text/plain; charset=utf-8"


def test_a_pdf_counts_its_pages_and_too_many_pages_is_a_400_naming_the_field(alice_client, settings):
    body = upload(alice_client, "report.pdf", files.pdf(3), "application/pdf").json()
    assert (body["kind"], body["pages"], body["tokens_estimate"]) == ("document", 3, 9_000)
    settings.ATTACHMENT_MAX_PDF_PAGES = 2
    refused = upload(alice_client, "long.pdf", files.pdf(3, compressed=True), "application/pdf")
    assert refused.status_code == 400
    assert refused.json()["error"]["field"] == "file"
    assert "3 pages" in refused.json()["error"]["message"]


def test_too_large_is_a_413_and_an_unknown_kind_a_400_both_naming_the_field(alice_client, settings):
    settings.ATTACHMENT_MAX_BYTES = 1000
    too_big = upload(alice_client, "notes.txt", b"x" * 1001, "text/plain")
    assert too_big.status_code == 413
    assert too_big.json()["error"] == {
        "type": "request_too_large",
        "message": "Files are limited to 1,000 bytes; this one is 1,001 bytes.",
        "field": "file",
    }
    unknown = upload(alice_client, "tool.exe", b"MZ\x90\x00\x03", "application/octet-stream")
    assert unknown.status_code == 400 and unknown.json()["error"]["field"] == "file"
    missing = alice_client.post("/attachments/", {})
    assert missing.status_code == 400 and missing.json()["error"]["field"] == "file"
    assert not Attachment.objects.exists()


def test_a_staged_file_can_be_discarded_but_a_sent_one_stays(alice_client, alice):
    staged = upload(alice_client, "a.txt", b"hello", "text/plain").json()
    assert alice_client.post(staged["url"] + "discard").status_code == 204
    assert not Attachment.objects.filter(public_id=staged["id"]).exists()


def test_staged_ids_must_be_the_callers_own_unsent_files_and_within_the_count(alice, user_factory, settings):
    mine = services.store(owner_id=alice.pk, filename="a.txt", data=b"a")
    theirs = services.store(owner_id=user_factory().pk, filename="b.txt", data=b"b")
    assert services.staged(owner_id=alice.pk, ids=[str(mine.public_id)]) == [mine]
    with pytest.raises(AttachmentRefused) as refused:
        services.staged(owner_id=alice.pk, ids=[str(theirs.public_id)])
    assert refused.value.field == "attachments"
    with pytest.raises(AttachmentRefused):
        services.staged(owner_id=alice.pk, ids=["not-a-uuid"])
    settings.ATTACHMENT_MAX_COUNT = 1
    with pytest.raises(AttachmentRefused, match="At most 1"):
        services.staged(owner_id=alice.pk, ids=[str(mine.public_id)] * 2)


def test_files_never_sent_are_purged_after_a_while_and_sent_ones_stay(alice):
    import datetime as dt

    from django.utils import timezone

    from claudeapp.attachments import tasks
    from claudeapp.conversations import services as conversations
    from claudeapp.conversations.models import Message

    old, _fresh, sent = (services.store(owner_id=alice.pk, filename=f"{n}.txt", data=b"x") for n in "abc")
    conversation = conversations.create_conversation(owner_id=alice.pk)
    services.attach(attachments=[sent], message_id=Message.objects.create(conversation=conversation, role="user").pk)
    day_ago = timezone.now() - dt.timedelta(hours=25)
    Attachment.objects.filter(pk__in=[old.pk, sent.pk]).update(created_at=day_ago)
    assert tasks.purge_unsent() == 1
    assert set(Attachment.objects.values_list("filename", flat=True)) == {"b.txt", "c.txt"}
