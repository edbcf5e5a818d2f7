"""Browser chat pages. Views parse, call one service, render; the turn lives in conversations.turns."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from billing.errors import BillingError
from claudeapp.accounts.principals import Principal
from claudeapp.chat import usage as usage_selectors
from claudeapp.chat.stream_views import MAX_PROMPT_CHARS
from claudeapp.chat.templatetags.chat_tags import usd
from claudeapp.conversations import selectors, services
from claudeapp.conversations.models import Conversation
from claudeapp.conversations.turns import DEFAULT_MAX_TOKENS
from routing.errors import RoutingError
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
        args = [conversation.public_id]
        return JsonResponse(
            {
                "url": url,
                "send_url": reverse("chat:send", args=args),
                "estimate_url": reverse("chat:estimate", args=args),
            }
        )
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


@login_required
def turn_estimate(request: HttpRequest, public_id: str) -> JsonResponse:
    """The worst case of sending `text` now, against the budget left: the composer warns before sending."""
    conversation = selectors.get_conversation(owner_id=request.user.pk, public_id=public_id)
    try:
        estimate = usage_selectors.estimate_turn(
            Principal.for_user(request.user),
            history=list(selectors.messages_of(conversation)),
            model_choice=(request.GET.get("model") or Conversation.AUTO)[:100],
            previous_model=conversation.last_model,
            text_chars=_int_param(request.GET.get("chars"), limit=MAX_PROMPT_CHARS),
            max_tokens=DEFAULT_MAX_TOKENS,
        )
    except (RoutingError, BillingError, ValueError) as exc:
        field = "chars" if isinstance(exc, ValueError) else "model"
        return JsonResponse(
            {"error": {"type": "invalid_request_error", "message": str(exc), "field": field}}, status=400
        )
    return JsonResponse(
        {
            "model": estimate.model_id,
            "worst_case_micros": estimate.worst_case_micros,
            "budget_left_micros": estimate.budget_left_micros,
            "over_budget": estimate.over_budget,
            "worst_case": usd(estimate.worst_case_micros),
            "budget_left": usd(estimate.budget_left_micros) if estimate.budget_left_micros is not None else None,
        }
    )


def _int_param(value: str | None, *, limit: int) -> int:
    if not value:
        return 0
    number = int(value)  # ValueError: answered as a 400 naming the field
    if not 0 <= number <= limit:
        raise ValueError(f"chars must be between 0 and {limit}")
    return number
