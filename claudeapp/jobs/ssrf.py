"""The SSRF guard for job webhook URLs: claudeapp.core.ssrf, answering in the jobs API's terms.

Checked when a job is created (so the caller gets a 400 naming webhook_url) and again at
delivery, where the POST goes to the very address that was checked.
"""

from __future__ import annotations

from django.conf import settings

from claudeapp.core.ssrf import Target, UnsafeUrl, is_public
from claudeapp.core.ssrf import check_url as _check_url
from claudeapp.jobs.errors import InvalidWebhookUrl

__all__ = ["Target", "check_url", "is_public"]


def check_url(url: str, *, allow_private: bool | None = None) -> Target:
    allow = settings.JOBS_WEBHOOK_ALLOW_PRIVATE if allow_private is None else allow_private
    try:
        return _check_url(url, allow_private=allow)
    except UnsafeUrl as exc:
        raise InvalidWebhookUrl(url=url, reason=exc.reason) from None
