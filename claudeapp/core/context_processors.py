from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def gateway(request: HttpRequest) -> dict[str, object]:
    return {"claude_offline": settings.CLAUDE_OFFLINE}
