"""Steps shared by /v1/messages and batch results: model checks, cache accounting, the reply."""

from __future__ import annotations

from emulator import cache, markers, models
from emulator.cache import CacheUsage
from emulator.config import Config
from emulator.errors import ApiError, invalid
from emulator.markers import Directives
from emulator.prompt import user_and_system_text
from emulator.reply import Reply, build_reply
from emulator.state import State
from emulator.tokens import Unit, units
from emulator.validation import MessageRequest


def check_model(req: MessageRequest, config: Config) -> models.ModelInfo:
    """404 for unknown/retired models, 403 for forbidden ones, 400 for per-model limits."""
    info = models.lookup(req.model, config.retired_models)
    if info is None:
        raise ApiError(404, f"model: {req.model}")
    if req.model in config.forbidden_models:
        raise ApiError(403, f"Your organization does not have access to model {req.model}")
    if req.max_tokens > info.max_tokens:
        raise invalid(
            f"max_tokens: {req.max_tokens} > {info.max_tokens}, which is the maximum allowed "
            f"number of output tokens for {req.model}"
        )
    if req.is_prefill and req.model in config.no_prefill_models:
        raise invalid(
            "This model does not support assistant message prefill. The conversation must end with a user message."
        )
    return info


def directives_for(req: MessageRequest) -> Directives:
    return markers.parse(user_and_system_text(req))


def generate(
    state: State, req: MessageRequest, directives: Directives, owner: str, all_units: list[Unit] | None = None
) -> tuple[Reply, CacheUsage]:
    all_units = all_units if all_units is not None else units(req)
    usage = state.cache.apply(
        f"{owner}\x00{req.model}",
        all_units,
        cache.breakpoints(req, all_units),
        state.config.cache_min_tokens,
        state.clock.now(),
    )
    return build_reply(req, directives), usage
