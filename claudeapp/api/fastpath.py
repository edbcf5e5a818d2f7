"""A lean Django handler for the partner-key call endpoints (the hot path), mounted in claudeapp/asgi.py.

Django's stock middleware are `MiddlewareMixin` classes: under ASGI each of their hooks hops to a
thread-sensitive worker thread, and every request gets a fresh one of those threads (created, then
joined by yet another thread). For the three partner call endpoints that cost more CPU than the
rest of the request. They are key-authenticated async views (no cookies, CSRF-exempt, request.user
set from the key), so sessions, CSRF, auth and messages do nothing for them. This handler keeps the
middleware that shapes their responses, Security, Common and X-Frame-Options, running their
(pure-CPU) hooks inline on the event loop, plus the API's own request-id and boundary middleware:
the chain is settings.MIDDLEWARE minus the ones named in PARTNER_CALL_SKIPPED_MIDDLEWARE (settings).
Every other path, browser ones included, keeps the full `settings.MIDDLEWARE` chain.

The request signals and response.close() run on the event loop when the request's context holds no
open database connection (the calls do their database work in claudeapp/core/dbthread.py, which hands its
connection back): their receivers then have nothing a thread is needed for, and each hop to a thread
cost about 2% of the process's CPU per call (py-spy, bench/cpu_per_call.sh). A request that did open a
connection in its context, or a signal with an async receiver, takes Django's own path, on one
long-lived thread instead of a new thread per request.

A view may leave work for after its reply (`after_reply`: a call's settlement, when the reply does not
carry the bill): the handler awaits it once the response is out, in the request's own task, so the
reader does not wait for it and a graceful shutdown still does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.db import connections
from django.dispatch import Signal
from django.http import HttpRequest, HttpResponse
from django.urls import ResolverMatch, get_resolver, set_script_prefix
from django.utils.deprecation import MiddlewareMixin
from django.utils.module_loading import import_string

from claudeapp.api.bodycap import CappedBodyMixin

log = logging.getLogger(__name__)

# Exact paths only: a path not listed here (even with a trailing slash) takes the full chain.
PARTNER_CALL_PATHS = frozenset({"/anthropic/v1/messages", "/anthropic/v1/messages/count_tokens", "/api/v1/messages"})
_thread_sensitive = ThreadPoolExecutor(max_workers=1, thread_name_prefix="partner-sync")
# The scope key of the work a view leaves for after its response went out (`after_reply`).
_AFTER_REPLY = "claudeapp.after_reply"
# The scope key of a future done once the reply went out (or the reader left): `reply_out`.
_REPLY_OUT = "claudeapp.reply_out"


def is_partner_call(path: str) -> bool:
    return path in PARTNER_CALL_PATHS


class Inline:
    """A MiddlewareMixin middleware whose hooks do no I/O, called on the event loop (no thread hop)."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Any, middleware_class: type) -> None:
        self.get_response = get_response
        self.inner = middleware_class(get_response)
        self.process_request = getattr(self.inner, "process_request", None)
        self.process_response_hook = getattr(self.inner, "process_response", None)
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.process_request(request) if self.process_request else None
        if response is None:
            response = await self.get_response(request)
        if self.process_response_hook:
            response = self.process_response_hook(request, response)
        return response


def after_reply(request: HttpRequest) -> list[Awaitable[Any]] | None:
    """Where a view puts work that need not delay its reply (a call's bookkeeping): the handler awaits
    it once the response is out, before the request ends (so a graceful shutdown still waits for it).
    None when the request did not come through this handler (Django's own, the test client): the view
    then does that work before replying."""
    scope = getattr(request, "scope", None)
    return scope.get(_AFTER_REPLY) if scope is not None else None


def reply_out(request: HttpRequest) -> asyncio.Future[None] | None:
    """Done once the request's response has gone out, or its reader left, or it failed: work left for
    after the reply may wait for it so as not to compete with the reply's last steps for the interpreter.
    None when the request did not come through this handler."""
    scope = getattr(request, "scope", None)
    return scope.get(_REPLY_OUT) if scope is not None else None


def chain() -> list[str]:
    """settings.MIDDLEWARE minus PARTNER_CALL_SKIPPED_MIDDLEWARE, in order: a middleware added to
    settings runs on the partner call endpoints too unless it is named there."""
    skipped = set(settings.PARTNER_CALL_SKIPPED_MIDDLEWARE)
    return [path for path in settings.MIDDLEWARE if path not in skipped]


def _on_loop(signal: Signal, sender: type | None) -> bool:
    """Whether `signal`'s receivers may run right here on the event loop: all of them synchronous
    (Django's `send` would otherwise need async_to_sync) and no database connection open in this
    request's context (close_old_connections would then close one, which is blocking I/O).

    Open, not merely initialized: a connection object with no connection behind it costs
    close_old_connections no I/O. Under `uvicorn --workers N` a worker imports the app inside its
    running loop, so the connection object Django's model classes initialize at import lands in the
    context every request inherits; testing for the object sent every request of every worker
    through a thread (about 20% more CPU a call than one worker, bench/cpu_per_call.sh WORKERS=2)."""
    _, async_receivers = signal._live_receivers(sender)  # Django 5.x; pinned by tests/api/test_fastpath.py
    return not async_receivers and all(conn.connection is None for conn in connections.all(initialized_only=True))


class CoalescedBody:
    """The ASGI `send` of a streamed response, writing the body chunks produced in one pass of the event
    loop as one chunk: one socket write instead of one per SSE event when upstream delivers several
    events in one read (usual under load, when it matters). Nothing waits for more: the chunks go out
    as soon as the producer next waits on upstream. Past `limit` bytes the producer waits for the write
    (the socket's back-pressure reaches it as before). Order is kept: one writer task at a time."""

    def __init__(self, send: Any, limit: int = 64 * 1024) -> None:
        self._send, self._limit = send, limit
        self._parts: list[bytes] = []
        self._size = 0
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("more_body"):
            self._parts.append(message.get("body", b""))
            self._size += len(self._parts[-1])
            if self._writer is None:
                self._writer = asyncio.ensure_future(self._write())
            if self._size >= self._limit:
                await self.drain()
            return
        await self.drain()
        await self._send(message)

    async def drain(self) -> None:
        """Wait until everything buffered is written (re-raising what the write raised)."""
        if self._writer is not None:
            await asyncio.shield(self._writer)

    async def _write(self) -> None:
        try:
            while self._parts:
                parts, self._parts, self._size = self._parts, [], 0
                await self._send({"type": "http.response.body", "body": b"".join(parts), "more_body": True})
        finally:
            self._writer = None


async def _send(signal: Signal, sender: type, **kwargs: Any) -> None:
    """`signal` to its receivers: on the loop when `_on_loop` allows, else Django's way (a thread)."""
    if _on_loop(signal, sender):
        signal.send(sender=sender, **kwargs)
    else:
        await signal.asend(sender=sender, **kwargs)


class LoopSignalsHandler(ASGIHandler):
    """Django's `ASGIHandler.handle`, step for step, with the request signals and response.close() on
    the event loop when `_on_loop` allows (see the module docstring)."""

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        after: list[Awaitable[Any]] = []
        out: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        scope = {**scope, _AFTER_REPLY: after, _REPLY_OUT: out}
        try:
            await self._answer(scope, receive, send, body_file, after, out)
        finally:  # whatever ended the request: work waiting for the reply must not wait for ever
            if not out.done():
                out.set_result(None)

    async def _answer(
        self,
        scope: dict[str, Any],
        receive: Any,
        send: Any,
        body_file: Any,
        after: list[Awaitable[Any]],
        out: asyncio.Future[None],
    ) -> None:
        await _send(signals.request_started, self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await self.send_response(error_response, send)
            await self._close(error_response)
            return

        async def process_request() -> HttpResponse:
            response = await self.run_get_response(request)
            with contextlib.suppress(asyncio.CancelledError):  # the client left while it was being sent
                await self.send_response(response, send)
            return response

        # The disconnect listener goes first: it must not raise anything that would keep the
        # response task from being cancelled (Django's own order and reasoning).
        tasks = [asyncio.create_task(self.listen_for_disconnect(receive)), asyncio.create_task(process_request())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        out.set_result(None)  # before the work that waits for it
        for work in after:  # the reader has its answer (or left): nothing of this may be lost either way
            try:
                await asyncio.shield(work)
            except Exception:
                log.exception("work left for after the reply failed")
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await _send(signals.request_finished, self.__class__)
        else:
            await self._close(response)
        body_file.close()

    async def send_response(self, response: HttpResponse, send: Any) -> None:
        if not response.streaming:
            await super().send_response(response, send)
            return
        coalesced = CoalescedBody(send)
        try:
            await super().send_response(response, coalesced)
        finally:
            with contextlib.suppress(Exception):  # what was produced before a failure still goes out
                await coalesced.drain()

    async def _close(self, response: HttpResponse) -> None:
        if _on_loop(signals.request_finished, response._handler_class):
            response.close()  # its closers, then request_finished
        else:
            await sync_to_async(response.close)()


class PartnerCallHandler(CappedBodyMixin, LoopSignalsHandler):
    """ASGIHandler with the lean chain above and the API body cap counted as the body arrives
    (claudeapp/api/bodycap.py); everything else (request parsing, URL resolution, exception
    handling, streaming, disconnect handling) is Django's own.

    Django's `MiddlewareMixin` middleware (Security, Common, X-Frame-Options) run their hooks inline on
    the event loop: they must do no I/O (one that does belongs in the skipped list, or should be
    written async). Every other middleware is built as Django builds it, and must be async-capable."""

    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        """Django's resolution, once per path and URL conf: these exact paths take no arguments, and
        walking the URL patterns cost about 4% of a call's CPU. A request with a urlconf of its own
        (set by a middleware) is resolved Django's way every time."""
        if hasattr(request, "urlconf") or request.path_info not in PARTNER_CALL_PATHS:
            return super().resolve_request(request)
        key = (get_resolver().urlconf_name, request.path_info)
        match = self._resolved.get(key)
        if match is None:
            match = self._resolved[key] = super().resolve_request(request)
        request.resolver_match = match
        return match

    def load_middleware(self, is_async: bool = False) -> None:
        self._resolved: dict[tuple[object, str], ResolverMatch] = {}
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response_async)
        for path in reversed(chain()):
            middleware_class = import_string(path)
            if issubclass(middleware_class, MiddlewareMixin):
                middleware = Inline(handler, middleware_class)
            else:
                middleware = middleware_class(handler)
            if hasattr(middleware, "process_exception"):
                self._exception_middleware.append(middleware.process_exception)
            handler = convert_exception_to_response(middleware)
        self._middleware_chain = handler

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async with ThreadSensitiveContext(executor=_thread_sensitive):
            await self.handle(scope, receive, send)
