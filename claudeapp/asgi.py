"""ASGI entry point: Django, with collected static files served by Starlette.

Static files go through an ASGI-native handler so admin and chat assets never
tie up Django's thread pool (whitenoise is WSGI-first).
"""

from __future__ import annotations

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "claudeapp.settings")
django.setup(set_prefix=False)  # what get_asgi_application() does, then our handler instead of Django's

from django.conf import settings  # noqa: E402  (settings are configured by the line above)
from starlette.exceptions import HTTPException  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.staticfiles import StaticFiles  # noqa: E402

from claudeapp.api.bodycap import CappedASGIHandler  # noqa: E402
from claudeapp.api.fastpath import PartnerCallHandler, is_partner_call  # noqa: E402

# Django's handler, with the API's body-size cap counted while a body arrives (chunked ones too).
django_application = CappedASGIHandler()

_static = StaticFiles(directory=settings.STATIC_ROOT, check_dir=False)
_static_prefix = settings.STATIC_URL.rstrip("/")
# The partner call endpoints (the hot path) skip the browser-only middleware: see claudeapp/api/fastpath.py.
partner_calls = PartnerCallHandler()

# Everything loaded so far (Django, apps, URL conf, SDK) lives as long as the process: move it out of
# the cyclic collector's reach, so its periodic full passes stop re-walking it on the hot path
# (measured: about 1 ms of CPU per partner call, bench/api_overhead.py).
gc.collect()
gc.freeze()


async def application(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "http" and scope["path"].startswith(_static_prefix + "/"):
        scope = dict(scope, root_path=scope.get("root_path", "") + _static_prefix)
        scope["path"] = scope["path"][len(_static_prefix) :]
        try:
            await _static(scope, receive, send)
        except HTTPException as exc:  # outside a Starlette app nothing turns these into responses
            await PlainTextResponse(exc.detail, status_code=exc.status_code)(scope, receive, send)
        return
    if scope["type"] == "http" and is_partner_call(scope["path"]):
        await partner_calls(scope, receive, send)
        return
    await django_application(scope, receive, send)
