"""ASGI entry point: Django, with static files served in front of it.

Static files go through servestatic, an ASGI-native handler (whitenoise is WSGI-first), so admin
and chat assets never tie up Django's thread pool, with or without a prior collectstatic.
"""

from __future__ import annotations

import gc
import multiprocessing
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "claudeapp.settings")
# `uvicorn --workers N` shares one listening socket between N processes, and libuv (uvloop) accepts every
# connection waiting on it in whichever process wakes first: a burst of new keep-alive connections (a
# proxy's pool, wrk -c50) lands mostly on one worker while the others idle. One accept per wakeup, then a
# yield, spreads them (bench/accept_balance.sh). libuv reads this when the server starts listening, after
# this import; a lone process (no parent: nothing to share the socket with) keeps libuv's default.
if multiprocessing.parent_process() is not None:
    os.environ.setdefault("UV_TCP_SINGLE_ACCEPT", "1")
django.setup(set_prefix=False)  # what get_asgi_application() does, then our handler instead of Django's

from django.conf import settings  # noqa: E402

from claudeapp.api.bodycap import CappedASGIHandler  # noqa: E402
from claudeapp.api.fastpath import PartnerCallHandler, is_partner_call  # noqa: E402
from claudeapp.core import staticfiles  # noqa: E402
from claudeapp.requestlog import buffer  # noqa: E402

# Django's handler, with the API's body-size cap counted while a body arrives (chunked ones too).
django_application = CappedASGIHandler()

# servestatic (claudeapp/core/staticfiles.py): app directories in DEBUG, else STATIC_ROOT when collected.
static_files = staticfiles.server()
_static_prefix = staticfiles.prefix()
# The partner call endpoints (the hot path) skip the browser-only middleware: see claudeapp/api/fastpath.py.
partner_calls = PartnerCallHandler()

# Everything loaded so far (Django, apps, URL conf, SDK) lives as long as the process: move it out of
# the cyclic collector's reach, so its periodic full passes stop re-walking it on the hot path
# (measured: about 1 ms of CPU per partner call, bench/api_overhead.py).
gc.collect()
gc.freeze()
if settings.GC_THRESHOLD:  # the calls' own short-lived objects, collected young (see GC_THRESHOLD)
    gc.set_threshold(*settings.GC_THRESHOLD)


async def application(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["type"] == "http" and scope["path"].startswith(_static_prefix):
        await static_files(scope, receive, send)  # a path that names no file answers a plain 404
        return
    if scope["type"] == "http" and is_partner_call(scope["path"]):
        await partner_calls(scope, receive, send)
        return
    await django_application(scope, receive, send)


async def lifespan(receive, send):  # type: ignore[no-untyped-def]
    """Startup needs nothing; at shutdown (SIGTERM, once the last request has ended) the request log writes
    the rows it still holds: uvicorn then re-raises the signal, which skips atexit (requestlog/buffer.py)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await buffer.flush_at_shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return
