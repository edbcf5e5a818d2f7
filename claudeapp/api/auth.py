"""Partner-key authentication for DRF views and for plain async (streaming) views.

Both accept `Authorization: Bearer <key>` or `x-api-key: <key>` (what the anthropic SDK
sends), verify through the same cached path, and fail with the same error shape.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from claudeapp.accounts.principals import Principal
from claudeapp.api import keys
from claudeapp.api.errors import NO_CREDENTIALS, ErrorInfo, InvalidKey, error_response_for, response_for
from claudeapp.api.models import PartnerKey

AsyncView = Callable[..., Awaitable[HttpResponse]]


def raw_key(request: HttpRequest) -> str | None:
    """The key the request carries, or None when it carries none (a Basic or other scheme counts as none)."""
    authorization = request.META.get("HTTP_AUTHORIZATION")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip()
    return request.META.get("HTTP_X_API_KEY")


def _attach(request: HttpRequest, key: PartnerKey) -> Principal:
    principal = keys.principal_for(key)
    request.partner_key = key  # type: ignore[attr-defined]
    request.principal = principal  # type: ignore[attr-defined]
    return principal


def scope_message(scope: str) -> str:
    return f"This API key lacks the '{scope}' scope."


class PartnerKeyAuthentication(BaseAuthentication):
    """request.user = the key's owner, request.auth = the PartnerKey, request.principal = its Principal."""

    def authenticate(self, request: Request) -> tuple[Any, PartnerKey] | None:
        raw = raw_key(request._request)
        if raw is None:
            return None
        try:
            key = keys.verify(raw)
        except InvalidKey as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from exc
        _attach(request._request, key)
        return key.owner, key

    def authenticate_header(self, request: Request) -> str:
        # Present so DRF answers 401 (not 403) when credentials are missing.
        return 'Bearer realm="api"'


class HasScope(BasePermission):
    """`permission_classes = [HasScope("messages")]`: the partner key must carry that scope."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.message = scope_message(scope)

    def __call__(self) -> HasScope:
        return self  # DRF instantiates permission classes; an instance stands in for its own class

    def has_permission(self, request: Request, view: Any) -> bool:
        key = request.auth
        return isinstance(key, PartnerKey) and key.has_scope(self.scope)


def partner_key_required(scope: str | None = None) -> Callable[[AsyncView], AsyncView]:
    """Guard a plain `async def` view with a partner key (and optionally a scope), like the DRF views."""

    def decorator(view: AsyncView) -> AsyncView:
        if not iscoroutinefunction(view):
            raise TypeError("partner_key_required guards async views; DRF views use PartnerKeyAuthentication")

        @functools.wraps(view)
        async def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            raw = raw_key(request)
            if raw is None:
                return response_for(request, ErrorInfo(401, "authentication_error", NO_CREDENTIALS))
            try:
                key = await keys.averify(raw)
            except InvalidKey as exc:
                return error_response_for(request, exc)
            if scope is not None and not key.has_scope(scope):
                return response_for(request, ErrorInfo(403, "permission_error", scope_message(scope)))
            request.user = key.owner
            request.auth = key  # type: ignore[attr-defined]
            _attach(request, key)
            return await view(request, *args, **kwargs)

        guarded.csrf_exempt = True  # type: ignore[attr-defined]  # key auth, no cookies: CSRF does not apply
        return guarded

    return decorator
