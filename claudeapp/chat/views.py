"""Browser chat pages. Views parse, call one service, render; the turn lives in conversations.turns."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from claudeapp.accounts.principals import Principal
from claudeapp.chat import usage as usage_selectors
from claudeapp.conversations import selectors, services
from claudeapp.conversations.models import Conversation
from routing.models import Model

SIDEBAR_LENGTH = 100


def _page(request: HttpRequest, conversation: Conversation | None) -> HttpResponse:
    context = {
        "conversation": conversation,
        "conversations": selectors.conversations_for(owner_id=request.user.pk)[:SIDEBAR_LENGTH],
        "messages": selectors.messages_of(conversation) if conversation else [],
        "models": Model.objects.filter(enabled=True),
        "background_available": True,
    }
    return render(request, "chat/chat.html", context)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return _page(request, None)


@login_required
def conversation_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    conversation = selectors.get_conversation(owner_id=request.user.pk, public_id=public_id)
    return _page(request, conversation)


@login_required
@require_POST
def conversation_new(request: HttpRequest) -> HttpResponse:
    model_choice = request.POST.get("model") or Conversation.AUTO
    conversation = services.create_conversation(owner_id=request.user.pk, model_choice=model_choice[:100])
    url = reverse("chat:conversation", args=[conversation.public_id])
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"url": url, "send_url": reverse("chat:send", args=[conversation.public_id])})
    return redirect(url)


@login_required
@require_POST
def conversation_rename(request: HttpRequest, public_id: str) -> HttpResponse:
    conversation = selectors.get_conversation(owner_id=request.user.pk, public_id=public_id)
    services.rename_conversation(conversation=conversation, title=request.POST.get("title", ""))
    return redirect("chat:conversation", public_id=conversation.public_id)


@login_required
@require_POST
def conversation_delete(request: HttpRequest, public_id: str) -> HttpResponse:
    conversation = selectors.get_conversation(owner_id=request.user.pk, public_id=public_id)
    services.delete_conversation(conversation=conversation)
    return redirect("chat:home")


@login_required
def usage(request: HttpRequest) -> HttpResponse:
    summary = usage_selectors.summary_for(Principal.for_user(request.user))
    return render(request, "chat/usage.html", {"summary": summary})
