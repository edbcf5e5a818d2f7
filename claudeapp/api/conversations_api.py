"""`/api/v1/conversations`: a partner key's own conversations. Another key's (or a browser user's)
conversation is a 404, never a 403: ids are not confirmed to exist."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from claudeapp.api.auth import HasScope
from claudeapp.api.models import Scope
from claudeapp.api.pagination import ApiCursorPagination, filter_date_range
from claudeapp.api.views import PartnerApiView
from claudeapp.attachments.models import Attachment
from claudeapp.conversations import selectors, services
from claudeapp.conversations.models import Conversation
from routing import modelmap
from routing.errors import RoutingError


class ConversationOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    title = serializers.CharField()
    model = serializers.CharField(source="model_choice")
    last_model = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class AttachmentOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    filename = serializers.CharField()
    kind = serializers.CharField()
    media_type = serializers.CharField()
    size_bytes = serializers.IntegerField()
    pages = serializers.IntegerField(allow_null=True)


class MessageOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    role = serializers.CharField()
    status = serializers.CharField()
    content = serializers.CharField()
    model = serializers.CharField(source="model_used")
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost_micros = serializers.IntegerField()
    job_id = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()
    attachments = AttachmentOutput(many=True, read_only=True)  # files sent with a user turn


class ConversationDetailOutput(ConversationOutput):
    messages = serializers.SerializerMethodField()

    def get_messages(self, conversation: Conversation) -> list[dict[str, Any]]:
        files = Prefetch("attachments", queryset=Attachment.objects.defer("data"))  # one query, no file bytes
        messages = selectors.messages_of(conversation).prefetch_related(files)
        return MessageOutput(messages, many=True).data  # type: ignore[return-value]


# The fields a partner may set. Everything else (owner, partner key, cost, ids) is read-only by omission.
class CreateInput(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    model = serializers.CharField(
        max_length=100,
        required=False,
        default=Conversation.AUTO,
        help_text="`auto`, a model id or an alias; turns sent without `model` use it.",
    )

    def validate_model(self, value: str) -> str:
        # Checked now, not at the first turn: a typo is the creator's 400, not every later turn's 404.
        if value.strip().lower() == Conversation.AUTO:
            return Conversation.AUTO
        try:
            modelmap.resolve_model(value)
        except RoutingError as exc:
            raise serializers.ValidationError(f"{value!r} is not a model this gateway serves ({exc}).") from exc
        return value


class RenameInput(serializers.Serializer):
    title = serializers.CharField(max_length=200, allow_blank=True)


def _own(request: Request) -> dict[str, int]:
    return {"owner_id": request.user.pk, "partner_key_id": request.auth.pk}


class ConversationsApi(PartnerApiView):
    permission_classes = [IsAuthenticated, HasScope(Scope.CONVERSATIONS)]
    pagination_class = ApiCursorPagination

    @extend_schema(
        operation_id="conversations_list",
        summary="This key's conversations, newest first",
        parameters=[
            OpenApiParameter("created_after", str, description="ISO date or date-time, inclusive"),
            OpenApiParameter(
                "created_before", str, description="ISO date or date-time, exclusive (a date: that day included)"
            ),
            OpenApiParameter("limit", int, description="Page size, at most 100"),
            OpenApiParameter("cursor", str, description="From `next` / `previous`"),
        ],
        responses=ConversationOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        rows = filter_date_range(selectors.conversations_for(**_own(request)), request.query_params)
        paginator = ApiCursorPagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(ConversationOutput(page, many=True).data)

    @extend_schema(
        operation_id="conversations_create",
        summary="Start a conversation (then send turns to POST /api/v1/messages with conversation_id)",
        request=CreateInput,
        responses={201: ConversationOutput},
        examples=[OpenApiExample("create", value={"title": "Support bot", "model": "auto"}, request_only=True)],
    )
    def post(self, request: Request) -> Response:
        data = CreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        conversation = services.create_conversation(
            **_own(request), title=data.validated_data["title"], model_choice=data.validated_data["model"]
        )
        return Response(ConversationOutput(conversation).data, status=201)


class ConversationApi(PartnerApiView):
    permission_classes = [IsAuthenticated, HasScope(Scope.CONVERSATIONS)]

    def _get(self, request: Request, conversation_id: str) -> Conversation:
        return selectors.get_conversation(public_id=conversation_id, **_own(request))

    @extend_schema(operation_id="conversations_retrieve", summary="One conversation with its messages",
                   responses=ConversationDetailOutput)  # fmt: skip
    def get(self, request: Request, conversation_id: str) -> Response:
        return Response(ConversationDetailOutput(self._get(request, conversation_id)).data)

    @extend_schema(
        operation_id="conversations_rename",
        summary="Rename (only `title` can change; other fields are ignored)",
        request=RenameInput,
        responses=ConversationOutput,
        examples=[OpenApiExample("rename", value={"title": "Refund questions"}, request_only=True)],
    )
    def patch(self, request: Request, conversation_id: str) -> Response:
        conversation = self._get(request, conversation_id)
        data = RenameInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.rename_conversation(conversation=conversation, title=data.validated_data["title"])
        return Response(ConversationOutput(conversation).data)

    @extend_schema(operation_id="conversations_delete", summary="Delete with its messages", responses={204: None})
    def delete(self, request: Request, conversation_id: str) -> Response:
        services.delete_conversation(conversation=self._get(request, conversation_id))
        return Response(status=204)
