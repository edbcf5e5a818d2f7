"""The raw ASGI application: routing, auth, API version, common headers, errors and stats."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from emulator import ids
from emulator.context import Ctx
from emulator.errors import ApiError, error_body
from emulator.handlers import batches, control, injection, messages, models
from emulator.http import JSON_TYPE, HeaderList, Receive, Request, Responder, Scope, Send
from emulator.state import State
from emulator.stats import new_entry
from emulator.validation import API_VERSIONS

log = logging.getLogger("emulator")
Handler = Callable[[Ctx], Awaitable[None]]
BROWSER_HEADER = "anthropic-dangerous-direct-browser-access"
ORG_ID = "6d2a1c4e-8b3f-4e1a-9c7d-0e3f5a7b9c11"


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Handler
    api: bool = True  # needs an API key and anthropic-version
    batch_sized: bool = False

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template) + "$")


ROUTES = (
    Route("POST", "/v1/messages", messages.create),
    Route("POST", "/v1/messages/count_tokens", messages.count_tokens),
    Route("GET", "/v1/models", models.list_models),
    Route("GET", "/v1/models/{model_id}", models.get_model),
    Route("POST", "/v1/messages/batches", batches.create, batch_sized=True),
    Route("GET", "/v1/messages/batches", batches.list_batches),
    Route("GET", "/v1/messages/batches/{batch_id}", batches.retrieve),
    Route("DELETE", "/v1/messages/batches/{batch_id}", batches.delete),
    Route("POST", "/v1/messages/batches/{batch_id}/cancel", batches.cancel),
    Route("GET", "/v1/messages/batches/{batch_id}/results", batches.results),
    Route("GET", "/_emulator/health", control.health, api=False),
    Route("GET", "/_emulator/config", control.get_config, api=False),
    Route("POST", "/_emulator/config", control.set_config, api=False),
    Route("POST", "/_emulator/reset", control.reset, api=False),
    Route("GET", "/_emulator/stats", control.stats, api=False),
    Route("POST", "/_emulator/clock", control.clock, api=False),
    Route("GET", "/_emulator/ledger", control.ledger, api=False),
    Route("DELETE", "/_emulator/ledger", control.clear_ledger, api=False),
)


class Router:
    def __init__(self, routes: tuple[Route, ...]) -> None:
        self.static = {(r.method, r.template): r for r in routes if "{" not in r.template}
        self.dynamic = [(r, r.pattern) for r in routes if "{" in r.template]

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        route = self.static.get((method, path))
        if route is not None:
            return route, {}
        for candidate, pattern in self.dynamic:
            found = pattern.match(path)
            if found and candidate.method == method:
                return candidate, found.groupdict()
        return None, {}


class EmulatorApp:
    def __init__(self, state: State) -> None:
        self.state = state
        self.router = Router(ROUTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request.from_scope(scope, receive)
        rid = ids.request_id()
        route, params = self.router.match(request.method, request.path)
        entry = new_entry(request.method, route.template if route else "<unmatched>", rid, request.headers)
        out = Responder(send, lambda: self._common_headers(rid))
        ctx = Ctx(request, out, self.state, entry, params)
        try:
            await self._dispatch(ctx, route)
        except ApiError as err:
            _refuse(ctx, route)
            await _send_error(out, err, rid)
        except Exception as exc:
            log.exception("emulator handler crashed")
            _refuse(ctx, route)
            await _send_error(out, ApiError(500, f"Internal server error: {exc}"), rid)
        entry["status"] = out.status
        if route is None or route.api:  # the control API's own calls would only add noise
            self.state.stats.record(entry)

    async def _dispatch(self, ctx: Ctx, route: Route | None) -> None:
        if route is None:
            raise ApiError(404, "Not found")
        config = self.state.config
        await ctx.request.read_body(config.batch_max_body_bytes if route.batch_sized else config.max_body_bytes)
        if route.api:
            self._authenticate(ctx.request)
            _check_version(ctx.request)
            if route.handler is not messages.create and await injection.header_fault(ctx):
                return
        await route.handler(ctx)

    def _authenticate(self, request: Request) -> None:
        headers = request.headers
        if "origin" in headers and headers.get(BROWSER_HEADER) != "true":
            raise ApiError(
                401,
                "CORS requests are not allowed for this Organization because of privacy "
                f"settings. To allow them, set the `{BROWSER_HEADER}` header to true.",
            )
        key = headers.get("x-api-key")
        if key is None and headers.get("authorization", "").startswith("Bearer "):
            key = headers["authorization"][7:]
        if not key:
            raise ApiError(401, "x-api-key header is required")
        allowed = self.state.config.api_keys
        if allowed is not None and key not in allowed:
            raise ApiError(401, "invalid x-api-key")
        request.api_key = key

    def _common_headers(self, rid: str) -> HeaderList:
        return [
            (b"request-id", rid.encode()),
            (b"anthropic-organization-id", ORG_ID.encode()),
            *self.state.ratelimit.headers(self.state.clock.now()),
        ]


def _refuse(ctx: Ctx, route: Route | None) -> None:
    if route is not None and route.handler is messages.create:
        messages.refuse(ctx)  # every POST /v1/messages is on the ledger, errors included


def _check_version(request: Request) -> None:
    version = request.headers.get("anthropic-version")
    if version is None:
        raise ApiError(400, "anthropic-version: header is required")
    if version not in API_VERSIONS:
        raise ApiError(
            400, f"anthropic-version: invalid version '{version}'; supported: {', '.join(sorted(API_VERSIONS))}"
        )


async def _send_error(out: Responder, err: ApiError, rid: str) -> None:
    if out.status is not None:
        return  # the response already started (or the connection was dropped): nothing to add
    await out.raw(err.status, JSON_TYPE, error_body(err, rid), err.headers)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
