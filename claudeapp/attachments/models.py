from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Attachment(models.Model):
    """A file sent with a chat message: an image, a PDF or a text file, kept in Postgres.

    Uploaded first (no message yet, so the composer can show its token estimate), then attached to
    the user's message when it is sent. Only its owner (and, for a partner's conversation, only
    that key) can read it.
    """

    class Kind(models.TextChoices):
        IMAGE = "image", "Image"
        DOCUMENT = "document", "PDF document"
        TEXT = "text", "Text file"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attachments")
    partner_key_id = models.BigIntegerField(null=True, blank=True, help_text="Set when a partner key sent it.")
    message = models.ForeignKey(
        "conversations.Message", null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    media_type = models.CharField(max_length=100)
    filename = models.CharField(max_length=255)
    size_bytes = models.PositiveIntegerField()
    pages = models.PositiveIntegerField(null=True, blank=True, help_text="PDFs: the page count read from the file.")
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    tokens_estimate = models.PositiveIntegerField(
        default=0, help_text="For trimming the context; the hold uses upstream's count_tokens."
    )
    sha256 = models.CharField(max_length=64)
    data = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["owner", "message"])]

    def __str__(self) -> str:
        return f"{self.filename} ({self.media_type}, {self.size_bytes} bytes)"
