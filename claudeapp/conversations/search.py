"""Full-text search over a person's conversations: titles and messages, Postgres `websearch` syntax
("quoted phrases", -exclusions, or). The filters use the same expressions as the GIN indexes."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank, SearchVector
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from claudeapp.conversations.models import SEARCH_CONFIG, Conversation, Message

MAX_RESULTS = 50
MAX_QUERY_CHARS = 200
# Markers Postgres puts around matches; control characters no stored text is expected to hold, so
# the snippet can be escaped as a whole and only the markers turned into <mark>.
START, STOP = "\x02", "\x03"


@dataclass(frozen=True)
class Hit:
    conversation: Conversation
    message: Message | None  # None: the title matched
    snippet: SafeString


def search(*, owner_id: int, query: str, limit: int = MAX_RESULTS) -> list[Hit]:
    """Matching titles first, then messages by rank; only the owner's browser conversations."""
    text = " ".join(query.split())[:MAX_QUERY_CHARS]
    if not text:
        return []
    q = SearchQuery(text, search_type="websearch", config=SEARCH_CONFIG)
    conversations = Conversation.objects.filter(owner_id=owner_id, partner_key_id__isnull=True)
    titles = (
        conversations.annotate(sv=SearchVector("title", config=SEARCH_CONFIG))
        .filter(sv=q)
        .annotate(headline=_headline("title", q))
        .order_by("-updated_at")[:limit]
    )
    messages = (
        Message.objects.filter(conversation__in=conversations)
        .annotate(sv=SearchVector("content", config=SEARCH_CONFIG))
        .filter(sv=q)
        .annotate(rank=SearchRank("sv", q), headline=_headline("content", q))
        .select_related("conversation")
        .defer("content")
        .order_by("-rank", "-created_at")[:limit]
    )
    hits = [Hit(c, None, _safe(c.headline)) for c in titles]
    hits += [Hit(m.conversation, m, _safe(m.headline)) for m in messages]
    return hits[:limit]


def _headline(field: str, q: SearchQuery) -> SearchHeadline:
    return SearchHeadline(
        field, q, config=SEARCH_CONFIG, start_sel=START, stop_sel=STOP, max_words=30, min_words=12, max_fragments=2,
        fragment_delimiter=" … ",
    )  # fmt: skip


def _safe(headline: str) -> SafeString:
    """Escape what the user or the model wrote, then mark the matches."""
    return mark_safe(escape(headline or "").replace(START, "<mark>").replace(STOP, "</mark>"))  # noqa: S308
