"""Browser chat pages. Views parse, call one service, render; the turn lives in conversations.turns."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from billing.errors import BillingError
from claudeapp.accounts.principals import Principal
from claudeapp.attachments import services as attachment_services
from claudeapp.attachments.errors import AttachmentRefused
from claudeapp.chat import budget_banner, picker
from claudeapp.chat import usage as usage_selectors
from claudeapp.chat.stream_views import MAX_PROMPT_CHARS
from claudeapp.chat.templatetags.chat_tags import usd
from claudeapp.conversations import instructions, selectors, services
from claudeapp.conversations.errors import InvalidTurn
from claudeapp.conversations.models import Conversation
from claudeapp.conversations.turns import DEFAULT_MAX_TOKENS
from routing.errors import RoutingError

SIDEBAR_LENGTH = 100


def _page(request: HttpRequest, conversation: Conversation | None) -> HttpResponse:
    context = {
        "conversation": conversation,
        "conversations": selectors.conversations_for(owner_id=request.user.pk)[:SIDEBAR_LENGTH],
        "thread": selectors.thread(conversation) if conversation else [],
        "picker": picker.model_picker(),
        "budget_banner": budget_banner.banner_for(Principal.for_user(request.user)),
        "background_available": True,
    }
    return render(request, "chat/chat.html", context)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return _page(request, None)


@login_required
def conversation_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    conversation = selectors.get_conversation(owner_id=request.user.pk, public_id=public_id)
    if request.GET.get("show"):  # a search hit: its message may be on a branch not on screen
        services.show_message(conversation=conversation, message_id=request.GET["show"][:64])
        conversation.refresh_from_db()
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
@require_POST
def switch_branch(request: HttpRequest, public_id: str) -> HttpResponse:
    """Show another version of a message ("< 2/3 >"): that branch becomes the active one."""
    conversation = selectors.get_conversation(owner_id=request.user.pk, public_id=public_id)
    try:
        services.switch_branch(conversation=conversation, message_id=request.POST.get("message", ""))
    except InvalidTurn as exc:
        return JsonResponse(
            {"error": {"type": "invalid_request_error", "message": exc.message, "field": exc.field}}, status=400
        )
    return thread_html(request, public_id)


@login_required
def thread_html(request: HttpRequest, public_id: str) -> HttpResponse:
    """The branch on screen as HTML (the messages list), for the page to swap in after a switch or an edit."""
    conversation = selectors.get_conversation(owner_id=request.user.pk, public_id=public_id)
    return render(request, "chat/_thread.html", {"thread": selectors.thread(conversation)})


@login_required
def budget_banner_html(request: HttpRequest) -> HttpResponse:
    """The banner as it stands now: the page asks again after each answer."""
    banner = budget_banner.banner_for(Principal.for_user(request.user))
    return render(request, "chat/_budget_banner.html", {"budget_banner": banner})


@login_required
def usage(request: HttpRequest) -> HttpResponse:
    summary = usage_selectors.summary_for(Principal.for_user(request.user))
    return render(request, "chat/usage.html", {"summary": summary})


@login_required
def turn_estimate(request: HttpRequest, public_id: str | None = None) -> JsonResponse:
    """The prompt's tokens and the worst case of sending `text` now (with the attached files and the
    instructions), against the budget left: the composer shows it and warns before sending."""
    conversation = selectors.get_conversation(owner_id=request.user.pk, public_id=public_id) if public_id else None
    try:
        estimate = usage_selectors.estimate_turn(
            Principal.for_user(request.user),
            history=selectors.active_path(conversation) if conversation else [],
            model_choice=(request.GET.get("model") or Conversation.AUTO)[:100],
            previous_model=conversation.last_model if conversation else "",
            text_chars=_int_param(request.GET.get("chars"), limit=MAX_PROMPT_CHARS),
            max_tokens=DEFAULT_MAX_TOKENS,
            attachments=attachment_services.staged(owner_id=request.user.pk, ids=_ids(request.GET.get("attachments"))),
            system=instructions.system_for(conversation) if conversation else instructions.default_for(request.user.pk),
        )
    except AttachmentRefused as exc:
        return JsonResponse(exc.body(), status=exc.status)
    except (RoutingError, BillingError, ValueError) as exc:
        field = "chars" if isinstance(exc, ValueError) else "model"
        return JsonResponse(
            {"error": {"type": "invalid_request_error", "message": str(exc), "field": field}}, status=400
        )
    return JsonResponse(
        {
            "model": estimate.model_id,
            "input_tokens": estimate.input_tokens,
            "counted": estimate.counted,
            "worst_case_micros": estimate.worst_case_micros,
            "budget_left_micros": estimate.budget_left_micros,
            "over_budget": estimate.over_budget,
            "worst_case": usd(estimate.worst_case_micros),
            "budget_left": usd(estimate.budget_left_micros) if estimate.budget_left_micros is not None else None,
        }
    )


def _ids(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _int_param(value: str | None, *, limit: int) -> int:
    if not value:
        return 0
    number = int(value)  # ValueError: answered as a 400 naming the field
    if not 0 <= number <= limit:
        raise ValueError(f"chars must be between 0 and {limit}")
    return number
