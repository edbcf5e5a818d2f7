"""GET /v1/models and GET /v1/models/{model_id}."""

from __future__ import annotations

from emulator import models
from emulator.context import Ctx
from emulator.errors import ApiError
from emulator.pagination import paginate


async def list_models(ctx: Ctx) -> None:
    items = models.available(ctx.state.config.retired_models)
    page = paginate(items, ctx.request.query, key=lambda m: m.id, render=lambda m: m.to_json())
    await ctx.out.json(200, page)


async def get_model(ctx: Ctx) -> None:
    model_id = ctx.params["model_id"]
    info = models.lookup(model_id, ctx.state.config.retired_models)
    if info is None:
        raise ApiError(404, f"model: {model_id}")
    await ctx.out.json(200, info.to_json())
