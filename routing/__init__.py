"""Multi-model router: the model map, routing rules, the classifier and `route()`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from routing.services import RouteDecision, RouteRequest


def route(request: RouteRequest, *, store: bool = True) -> RouteDecision:
    """Shortcut for routing.services.route (imported lazily: this package loads before the app registry)."""
    from routing import services

    return services.route(request, store=store)


async def aroute(request: RouteRequest, *, store: bool = True) -> RouteDecision:
    from routing import services

    return await services.aroute(request, store=store)
