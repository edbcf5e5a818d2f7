"""The partner call endpoints take the lean handler (claudeapp/api/fastpath.py); every other path the
full middleware chain. Driven through the real ASGI application, as uvicorn calls it."""

from __future__ import annotations

import contextlib
import gc

import httpx
import pytest
from django.utils.deprecation import MiddlewareMixin

from claudeapp.api.fastpath import PARTNER_CALL_PATHS, is_partner_call

pytestmark = [pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _finalize_earlier_tests_clients():
    # Async clients left by earlier tests' (closed) loops must be finalized outside this test's loop,
    # or their close callbacks surface as this test's errors.
    gc.collect()


async def _call(method: str, path: str, **kwargs: object) -> httpx.Response:
    from claudeapp.asgi import application

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.request(method, path, **kwargs)


def test_only_the_exact_partner_call_paths_take_the_lean_handler():
    assert is_partner_call("/anthropic/v1/messages") and is_partner_call("/api/v1/messages")
    assert is_partner_call("/anthropic/v1/messages/count_tokens")
    for path in ("/anthropic/v1/messages/", "/api/v1/conversations", "/anthropic/v1/models", "/", "/admin/"):
        assert not is_partner_call(path)
    assert all(path.startswith(("/api/", "/anthropic/")) for path in PARTNER_CALL_PATHS)


@pytest.mark.parametrize("path", sorted(PARTNER_CALL_PATHS))
async def test_a_partner_call_keeps_the_api_error_shape_and_the_security_headers_but_sets_no_cookie(path):
    response = await _call("POST", path, json={"model": "claude-haiku-5-5"}, headers={"x-request-id": "req_fastpath1"})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.headers["x-request-id"] == "req_fastpath1"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "set-cookie" not in response.headers
    assert "cookie" not in response.headers.get("vary", "").lower()


async def test_an_oversized_partner_call_is_refused_before_the_view():
    from django.conf import settings

    body = b"x" * (settings.API_MAX_BODY_BYTES + 1)
    response = await _call("POST", "/anthropic/v1/messages", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["type"] == "request_too_large"


async def test_browser_pages_still_get_the_full_chain_with_its_csrf_cookie():
    response = await _call("GET", "/admin/login/")
    assert response.status_code == 200
    assert "csrftoken" in response.cookies
    assert response.headers["x-frame-options"] == "DENY"


class StampMiddleware(MiddlewareMixin):
    """A middleware a deployment adds to settings.MIDDLEWARE (e.g. a header its proxy needs)."""

    def process_response(self, request, response):
        response["x-deployment-stamp"] = "seen"
        return response


def test_the_lean_chain_is_settings_middleware_minus_the_named_skips(settings):
    from claudeapp.api.fastpath import chain

    lean = chain()
    assert lean == [m for m in settings.MIDDLEWARE if m not in settings.PARTNER_CALL_SKIPPED_MIDDLEWARE]
    assert "django.middleware.security.SecurityMiddleware" in lean
    assert "claudeapp.api.middleware.RequestIdMiddleware" in lean
    assert "django.contrib.sessions.middleware.SessionMiddleware" not in lean


async def test_a_middleware_added_to_settings_runs_on_the_partner_call_endpoints_too(settings):
    from claudeapp.api.fastpath import PartnerCallHandler

    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.api.test_fastpath.StampMiddleware"]
    transport = httpx.ASGITransport(app=PartnerCallHandler())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post("/anthropic/v1/messages", json={"model": "claude-haiku-5-5"})
    assert response.status_code == 401  # no key: the API's own answer, through the whole lean chain
    assert response.headers["x-deployment-stamp"] == "seen"
    assert "set-cookie" not in response.headers


@contextlib.contextmanager
def _on_both_request_signals(receiver, uid: str):
    """`receiver` connected to request_started and request_finished for the block."""
    from django.core import signals

    pair = (signals.request_started, signals.request_finished)
    for sig in pair:
        sig.connect(receiver, dispatch_uid=f"{uid}-{id(sig)}")
    try:
        yield
    finally:
        for sig in pair:
            sig.disconnect(dispatch_uid=f"{uid}-{id(sig)}")


def test_request_signals_reach_sync_and_async_receivers_and_sync_ones_stay_on_the_loop():
    """The lean handler runs the request signals on the event loop when nothing needs a thread: every
    receiver still gets each signal once per request, a sync one on the loop's own thread, and an
    async receiver (which Django's `send` cannot call from the loop) sends them Django's way.

    Served from a thread of its own, as uvicorn serves from a loop whose context opened no database
    connection (this test process's main thread has one, from the tests before)."""
    import asyncio
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from django.core import signals

    seen: list[tuple[str, str]] = []

    def sync_receiver(signal, **kwargs):
        seen.append(("sync", threading.current_thread().name))

    async def async_receiver(signal, **kwargs):
        seen.append(("async", threading.current_thread().name))

    async def scenario() -> str:
        await _call("POST", "/anthropic/v1/messages", json={})
        return threading.current_thread().name

    with _on_both_request_signals(sync_receiver, "test-sync"):
        with ThreadPoolExecutor(1, thread_name_prefix="fresh-loop") as fresh:
            loop_thread = fresh.submit(asyncio.run, scenario()).result()
            assert seen == [("sync", loop_thread), ("sync", loop_thread)]

            seen.clear()
            signals.request_finished.connect(async_receiver, dispatch_uid="test-async")
            try:
                fresh.submit(asyncio.run, scenario()).result()
            finally:
                signals.request_finished.disconnect(dispatch_uid="test-async")
        assert seen[0] == ("sync", loop_thread)  # request_started: still no async receiver
        assert sorted(kind for kind, _ in seen[1:]) == ["async", "sync"]
        assert [name for kind, name in seen[1:] if kind == "sync"] != [loop_thread]  # Django's thread hop


@pytest.mark.django_db
def test_a_context_holding_an_open_database_connection_sends_the_signals_from_a_thread():
    """close_old_connections on an open connection is blocking I/O: not on the loop. A connection object
    with nothing open behind it (what importing Django's models leaves) costs it no I/O."""
    from concurrent.futures import ThreadPoolExecutor

    from django.core import signals
    from django.db import connections

    from claudeapp.api.fastpath import LoopSignalsHandler, _on_loop

    def check() -> tuple[bool, bool, bool]:
        empty = _on_loop(signals.request_finished, LoopSignalsHandler)
        connection = connections["default"]  # initializes this context's connection object, opens nothing
        initialized = _on_loop(signals.request_finished, LoopSignalsHandler)
        connection.ensure_connection()
        try:
            return empty, initialized, _on_loop(signals.request_finished, LoopSignalsHandler)
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as fresh:  # a thread of its own: no connection yet, like a new request's context
        assert fresh.submit(check).result() == (True, True, False)


def test_an_app_imported_inside_the_running_loop_keeps_the_request_signals_on_the_loop():
    """`uvicorn --workers N` imports the app inside each worker's running loop: the connection object
    Django's model classes initialize then sits in the context every request inherits. The signals must
    still run on the loop (they went through a thread for every request of every worker: ~20% more CPU
    a call than one worker)."""
    import asyncio
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    seen: list[str] = []

    def sync_receiver(signal, **kwargs):
        seen.append(threading.current_thread().name)

    async def scenario() -> str:
        assert connections["default"].vendor == "postgresql"  # what a model class's import does, in the loop
        assert connections.all(initialized_only=True)
        await _call("POST", "/anthropic/v1/messages", json={})
        return threading.current_thread().name

    with _on_both_request_signals(sync_receiver, "test-import"), ThreadPoolExecutor(1) as worker:
        loop_thread = worker.submit(asyncio.run, scenario()).result()
    assert seen == [loop_thread, loop_thread]


def _stub_view(request):
    from django.http import HttpResponse

    return HttpResponse(status=299)


urlpatterns = []  # filled by the test below: this module doubles as a URL conf


async def test_the_resolution_kept_per_path_follows_a_changed_url_conf(settings):
    """Each path is resolved once per URL conf: a view mounted elsewhere (another ROOT_URLCONF) is
    found, not the one resolved for the first conf."""
    from django.urls import path

    from claudeapp.api.fastpath import PartnerCallHandler

    handler = PartnerCallHandler()
    transport = httpx.ASGITransport(app=handler)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.post("/anthropic/v1/messages", json={})).status_code == 401  # the real view
        urlpatterns[:] = [path("anthropic/v1/messages", _stub_view)]
        settings.ROOT_URLCONF = "tests.api.test_fastpath"
        try:
            assert (await client.post("/anthropic/v1/messages", json={})).status_code == 299
        finally:
            urlpatterns.clear()
        settings.ROOT_URLCONF = "claudeapp.urls"
        assert (await client.post("/anthropic/v1/messages", json={})).status_code == 401


async def test_body_chunks_produced_in_one_pass_of_the_loop_go_out_as_one_write_in_order():
    """CoalescedBody: what the producer yields without waiting is one ASGI message; a wait flushes;
    the final message comes last; past the limit the producer waits for the write."""
    import asyncio

    from claudeapp.api.fastpath import CoalescedBody

    sent: list[dict] = []

    async def send(message: dict) -> None:
        await asyncio.sleep(0)  # a real server may suspend on back-pressure
        sent.append(message)

    body = CoalescedBody(send, limit=10)
    await body({"type": "http.response.start", "status": 200, "headers": []})
    for part in (b"a", b"b", b"c"):  # one burst: no await that suspends in between
        await body({"type": "http.response.body", "body": part, "more_body": True})
    await asyncio.sleep(0.01)  # the producer waits on upstream: the burst is written
    await body({"type": "http.response.body", "body": b"d", "more_body": True})
    await body({"type": "http.response.body", "body": b"0123456789", "more_body": True})  # past the limit
    assert sent[-1]["body"] == b"d0123456789"  # written before the producer went on
    await body({"type": "http.response.body", "body": b"e", "more_body": True})
    await body({"type": "http.response.body"})
    assert [m.get("body") for m in sent] == [None, b"abc", b"d0123456789", b"e", None]
    assert sent[-1] == {"type": "http.response.body"}


async def test_a_streamed_partner_response_reaches_the_client_whole_through_the_coalescing_send():
    from django.http import StreamingHttpResponse

    from claudeapp.api.fastpath import PartnerCallHandler

    async def events():
        import asyncio

        for i in range(5):
            yield f"event: e\ndata: {i}\n\n".encode()
            if i == 2:
                await asyncio.sleep(0.01)

    handler = PartnerCallHandler()
    messages: list[dict] = []

    async def send(message: dict) -> None:
        messages.append(message)

    await handler.send_response(StreamingHttpResponse(events(), content_type="text/event-stream"), send)
    bodies = [m["body"] for m in messages if m["type"] == "http.response.body" and m.get("body")]
    assert b"".join(bodies) == b"".join(f"event: e\ndata: {i}\n\n".encode() for i in range(5))
    assert len(bodies) == 2  # two bursts, two writes (five events)
    assert messages[-1] == {"type": "http.response.body"}


def raw_asgi_request(
    path: str,
    *,
    body: bytes = b"{}",
    headers: list[tuple[bytes, bytes]] = (),
    disconnect_after: float | None = None,
    on_send=None,
):
    """A POST's scope, a receive that gives `body` (then, when asked, a disconnect after a while) and a send
    that records every message it was handed, then awaits `on_send(message)` when given (a slow server
    write)."""
    import asyncio

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 1), "server": ("testserver", 80),
    }  # fmt: skip
    sent: list[dict] = []
    given = []

    async def receive() -> dict:
        if not given:
            given.append(1)
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600 if disconnect_after is None else disconnect_after)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)
        if on_send is not None:
            await on_send(message)

    return scope, receive, send, sent


@pytest.mark.parametrize("ending", ["reply", "view raised", "reader left"])
async def test_work_waiting_for_the_reply_starts_once_it_is_out_or_the_request_ended_any_other_way(settings, ending):
    """fastpath.reply_out: done after the response's last message went to the server (so work left for
    after the reply does not compete with its last steps), and done however else the request ends (a
    view that raised: its 500 goes out first; a reader that left mid-view), so nothing waiting for it
    waits for ever."""
    import asyncio

    from django.urls import path

    from claudeapp.api.fastpath import PartnerCallHandler, after_reply, reply_out

    seen: dict[str, object] = {}

    async def view(request):
        from django.http import HttpResponse

        out = reply_out(request)
        seen["done at first"] = out.done()

        async def later() -> None:
            await out
            seen["sent when it started"] = [m["type"] for m in sent]

        after_reply(request).append(asyncio.ensure_future(later()))
        if ending == "view raised":
            raise RuntimeError("boom")
        if ending == "reader left":
            await asyncio.sleep(3600)
        return HttpResponse(status=299)

    urlpatterns[:] = [path("anthropic/v1/messages", view)]
    settings.ROOT_URLCONF = "tests.api.test_fastpath"
    scope, receive, send, sent = raw_asgi_request(
        "/anthropic/v1/messages", disconnect_after=0.05 if ending == "reader left" else None
    )
    try:
        await asyncio.wait_for(PartnerCallHandler()(scope, receive, send), 10)
    finally:
        urlpatterns.clear()
        settings.ROOT_URLCONF = "claudeapp.urls"
    assert seen["done at first"] is False
    if ending == "reader left":
        assert seen["sent when it started"] == []  # nothing went out, and the work still ran
    else:
        assert seen["sent when it started"] == ["http.response.start", "http.response.body"]
        assert sent[0]["status"] == (299 if ending == "reply" else 500)
