"""Request bodies of the message endpoints: validation that names the failing field, and the
Anthropic body split into what the gateway reads and what it passes through untouched."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from claudeapp.calls.run import CallSpec

MAX_MESSAGES = 10_000
# Fields the gateway itself reads from an Anthropic body; every other field goes upstream as sent.
INTERPRETED = frozenset({"model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream"})
# SSRF guard: a body may not choose where the gateway sends it.
FORBIDDEN_SUFFIXES = ("_url", "_base", "_uri", "_endpoint", "_host")
FORBIDDEN_NAMES = frozenset({"url", "base_url", "baseurl", "api_base", "endpoint", "host", "proxy", "upstream"})


class ContentField(serializers.JSONField):
    """A message's content: a non-empty string, or a list of content blocks (objects with a `type`)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str):
            if not data:
                raise serializers.ValidationError("Must not be empty.")
            return data
        if (
            isinstance(data, list)
            and data
            and all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in data)
        ):
            return data
        raise serializers.ValidationError("Must be a string or a non-empty list of content blocks with a `type`.")


class SystemField(serializers.JSONField):
    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str):
            return data
        if isinstance(data, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in data):
            return data
        raise serializers.ValidationError("Must be a string or a list of text blocks.")


class MessageParam(serializers.Serializer):
    role = serializers.ChoiceField(choices=["user", "assistant"])
    content = ContentField()


def check_no_upstream_override(body: dict[str, Any]) -> None:
    for name in body:
        lowered = str(name).lower()
        if lowered in FORBIDDEN_NAMES or lowered.endswith(FORBIDDEN_SUFFIXES):
            raise serializers.ValidationError(
                {name: ["The upstream is chosen by the gateway; this field is not allowed."]}
            )


class AnthropicMessagesInput(serializers.Serializer):
    model = serializers.CharField(max_length=100)
    max_tokens = serializers.IntegerField(min_value=1)
    messages = serializers.ListField(child=MessageParam(), min_length=1, max_length=MAX_MESSAGES)
    system = SystemField(required=False)
    metadata = serializers.DictField(required=False)
    stop_sequences = serializers.ListField(child=serializers.CharField(trim_whitespace=False), required=False)
    stream = serializers.BooleanField(default=False)


def anthropic_request(body: dict[str, Any], *, cap: int | None) -> tuple[str, CallSpec, bool]:
    """(requested model, what to send, stream?) from an Anthropic Messages body. ValidationError -> 400."""
    check_no_upstream_override(body)
    v = plainly_valid(body)
    if v is None:  # something to explain: the serializer names the field, as it always has
        data = AnthropicMessagesInput(data=body)
        data.is_valid(raise_exception=True)
        v = data.validated_data
    metadata = v.get("metadata")
    spec = CallSpec(
        messages=v["messages"],
        max_tokens=min(v["max_tokens"], cap) if cap else v["max_tokens"],
        system=v.get("system"),
        metadata=metadata,
        route_tags={k: val for k, val in (metadata or {}).items() if k != "user_id"},
        stop_sequences=v.get("stop_sequences"),
        extra={k: val for k, val in body.items() if k not in INTERPRETED} or None,
        strict_max_tokens=True,  # Anthropic answers 400 above a model's ceiling; so do we
    )
    return v["model"], spec, v["stream"]


def plainly_valid(body: dict[str, Any]) -> dict[str, Any] | None:
    """AnthropicMessagesInput's validated data for a body that is plainly valid, without building
    the serializer (a few hundred microseconds per call on the hot path); None when anything needs
    a closer look (a coercion the serializer would make, or an error it must word)."""
    model, max_tokens, messages = body.get("model"), body.get("max_tokens"), body.get("messages")
    if not (type(model) is str and 0 < len(model) <= 100 and model == model.strip()):
        return None
    if not (type(max_tokens) is int and max_tokens >= 1):
        return None
    if not (type(messages) is list and 0 < len(messages) <= MAX_MESSAGES):
        return None
    checked = []
    for message in messages:
        if type(message) is not dict or message.get("role") not in ("user", "assistant"):
            return None
        content = message.get("content")
        if type(content) is str:
            if not content:
                return None
        elif not (
            type(content) is list and content and all(type(b) is dict and type(b.get("type")) is str for b in content)
        ):
            return None
        checked.append({"role": message["role"], "content": content})
    valid: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": checked}
    if "system" in body:
        system = body["system"]
        if not (
            type(system) is str
            or (type(system) is list and all(type(b) is dict and b.get("type") == "text" for b in system))
        ):
            return None
        valid["system"] = system
    if "metadata" in body:
        metadata = body["metadata"]
        if type(metadata) is not dict or not all(type(k) is str for k in metadata):
            return None
        valid["metadata"] = metadata
    if "stop_sequences" in body:
        stops = body["stop_sequences"]
        if type(stops) is not list or not all(type(x) is str and x for x in stops):
            return None
        valid["stop_sequences"] = stops
    stream = body.get("stream", False)
    if type(stream) is not bool:
        return None
    valid["stream"] = stream
    return valid


class CountTokensInput(serializers.Serializer):
    model = serializers.CharField(max_length=100)
    messages = serializers.ListField(child=MessageParam(), min_length=1, max_length=MAX_MESSAGES)
    system = SystemField(required=False)


class AttachmentInput(serializers.Serializer):
    """A file sent with a conversation turn (image, PDF or text file; its kind is read from its bytes)."""

    filename = serializers.CharField(max_length=255)
    data = serializers.CharField(trim_whitespace=False, help_text="The file's bytes, base64-encoded.")


class MessagesInput(serializers.Serializer):
    """`POST /api/v1/messages`."""

    # Left out: `auto` for a stateless turn, the conversation's own model inside one.
    model = serializers.CharField(max_length=100, required=False)
    messages = serializers.ListField(child=MessageParam(), min_length=1, max_length=MAX_MESSAGES, required=False)
    content = serializers.CharField(required=False, trim_whitespace=False, max_length=1_000_000)
    conversation_id = serializers.UUIDField(required=False, allow_null=True)
    attachments = serializers.ListField(child=AttachmentInput(), required=False)  # with conversation_id
    system = SystemField(required=False)
    max_tokens = serializers.IntegerField(min_value=1, required=False)
    metadata = serializers.DictField(child=serializers.CharField(max_length=200), required=False)
    stream = serializers.BooleanField(default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("conversation_id"):
            if "messages" in attrs:
                raise serializers.ValidationError({"messages": ["Send `content` when continuing a conversation."]})
            if not attrs.get("content"):
                raise serializers.ValidationError({"content": ["This field is required with conversation_id."]})
            if "system" in attrs:
                raise serializers.ValidationError({"system": ["Not supported inside a conversation."]})
        elif attrs.get("attachments"):
            raise serializers.ValidationError(
                {"attachments": ["Only with conversation_id; a stateless call sends image/document blocks."]}
            )
        elif "messages" in attrs and "content" in attrs:
            raise serializers.ValidationError({"content": ["Send either `messages` or `content`, not both."]})
        elif not attrs.get("messages") and not attrs.get("content"):
            raise serializers.ValidationError({"messages": ["This field is required."]})
        return attrs
