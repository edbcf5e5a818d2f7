"""Instructions (a conversation's, and the default on the settings page), search across conversations,
and exports (one conversation as Markdown or JSON, everything as a zip). Parse, one service call, render."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from claudeapp.conversations import exports, instructions, search, selectors
from claudeapp.conversations.instructions import InstructionsTooLong


def _bad(message: str, field: str) -> JsonResponse:
    return JsonResponse({"error": {"type": "invalid_request_error", "message": message, "field": field}}, status=400)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@login_required
@require_POST
def conversation_instructions(request: HttpRequest, public_id: str) -> HttpResponse:
    conversation = selectors.get_conversation(owner_id=request.user.pk, public_id=public_id)
    try:
        instructions.set_for_conversation(conversation=conversation, text=request.POST.get("system_prompt", ""))
    except InstructionsTooLong as exc:
        return _bad(str(exc), exc.field)
    if _wants_json(request):
        text = conversation.system_prompt
        return JsonResponse({"system_prompt": text, "tokens": instructions.token_count(text)})
    return redirect("chat:conversation", public_id=conversation.public_id)


@login_required
@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest) -> HttpResponse:
    error, saved = "", False
    text = instructions.default_for(request.user.pk)
    if request.method == "POST":
        text = request.POST.get("default_system_prompt", "")
        try:
            instructions.set_default(user_id=request.user.pk, text=text)
            text, saved = instructions.default_for(request.user.pk), True
        except InstructionsTooLong as exc:
            if _wants_json(request):
                return _bad(str(exc), "default_system_prompt")
            error = str(exc)
    context = {
        "default_system_prompt": text,
        "tokens": instructions.token_count(text),
        "max_chars": instructions.MAX_INSTRUCTIONS_CHARS,
        "saved": saved,
        "error": error,
    }
    return render(request, "chat/settings.html", context, status=400 if error else 200)


@login_required
@require_GET
def search_page(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    if len(query) > search.MAX_QUERY_CHARS * 5:
        return _bad(f"Search for at most {search.MAX_QUERY_CHARS} characters.", "q")
    hits = search.search(owner_id=request.user.pk, query=query)
    return render(request, "chat/search.html", {"query": query, "hits": hits})


@login_required
@require_GET
def export_conversation(request: HttpRequest, public_id: str, fmt: str) -> HttpResponse:
    if fmt not in ("md", "json"):
        raise Http404("Export as .md or .json")
    conversation = selectors.get_conversation(owner_id=request.user.pk, public_id=public_id)
    if fmt == "json":
        body, content_type = exports.conversation_json(conversation), "application/json; charset=utf-8"
    else:
        body, content_type = exports.conversation_markdown(conversation), "text/markdown; charset=utf-8"
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{exports.filename_for(conversation, fmt)}"'
    return response


@login_required
@require_GET
def export_all(request: HttpRequest) -> FileResponse:
    archive = exports.user_archive(user_id=request.user.pk, username=request.user.get_username())
    return FileResponse(
        archive, as_attachment=True, filename="claude-gateway-export.zip", content_type="application/zip"
    )
