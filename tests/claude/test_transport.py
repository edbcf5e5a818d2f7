"""The hot path's HTTP hop (claudeapp/claude/transport.py) against a tiny aiohttp server of the test's
own, for what the emulator does not send: SSE lines over 64 KiB, a connection cut mid-line, odd line
endings. Statuses and the SDK-equivalent error mapping are covered through the emulator elsewhere."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from claudeapp.claude import client, transport
from claudeapp.claude.errors import UpstreamOverloaded, UpstreamUnavailable

pytestmark = [pytest.mark.anyio]

BIG = "x" * 200_000  # far over aiohttp's 64 KiB readline limit


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _sse(request: web.Request) -> web.StreamResponse:
    kind = (await request.json())["messages"][0]["content"]
    if kind == "hang":  # upstream takes the request and never answers
        await asyncio.sleep(5)
    if kind == "overloaded":
        return web.json_response(
            {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
            status=529,
            headers={"retry-after": "3", "request-id": "req_529"},
        )
    response = web.StreamResponse(headers={"content-type": "text/event-stream", "request-id": "req_1"})
    await response.prepare(request)
    await response.write(b"event: ping\r\ndata: {}\r\n\r\n")  # CRLF line endings are legal SSE
    await response.write(f"event: big\ndata: {json.dumps({'text': BIG})}\n\n".encode()[:70_000])
    if kind == "cut":
        request.transport.close()  # mid-line: the rest of the event never comes
        return response
    await response.write(f"event: big\ndata: {json.dumps({'text': BIG})}\n\n".encode()[70_000:])
    await response.write(b": a comment\nevent: last\ndata: one\ndata: two\n\n")
    await response.write_eof()
    return response


@pytest.fixture
async def upstream(settings):
    app = web.Application()
    app.router.add_post("/v1/messages", _sse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    settings.ANTHROPIC_BASE_URL = f"http://127.0.0.1:{port}"
    yield
    await client.aclose_async_client()
    await runner.cleanup()


async def _events(kind: str) -> list[tuple[str | None, str]]:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": kind}], "stream": True}
    async with transport.post_messages(body, model="m") as resp:
        assert resp.request_id == "req_1"
        return [event async for event in resp.sse()]


async def test_long_lines_crlf_comments_and_multi_line_data_arrive_whole(upstream):
    events = await _events("whole")
    assert events[0] == ("ping", "{}")
    assert events[1][0] == "big" and json.loads(events[1][1])["text"] == BIG
    assert events[2] == ("last", "one\ntwo")


async def test_a_stream_cut_mid_line_is_an_upstream_failure_not_a_crash(upstream):
    with pytest.raises(UpstreamUnavailable) as caught:
        await asyncio.wait_for(_events("cut"), timeout=30)
    assert caught.value.retryable


async def test_an_error_status_maps_like_the_sdk_path(upstream):
    with pytest.raises(UpstreamOverloaded) as caught:
        await _events("overloaded")
    assert caught.value.status == 529 and caught.value.retry_after == 3.0
    assert caught.value.request_id == "req_529" and caught.value.message == "busy"


async def test_an_upstream_that_never_answers_times_out_at_the_configured_read_timeout(upstream, settings):
    settings.ANTHROPIC_TIMEOUT_SECONDS = 0.5  # read by the session, made on first use in this loop
    with pytest.raises(UpstreamUnavailable) as caught:
        await asyncio.wait_for(_events("hang"), timeout=4)  # not the 5 s the server would take
    assert caught.value.error_type == "timeout" and caught.value.retryable
