"""The model map as an immutable per-process snapshot: enabled models, aliases, fallback chains and
the published routing rules.

Every web and worker process keeps one snapshot (claudeapp/core/versioned.py) and checks its version
in Redis at most every MODEL_MAP_REFRESH_SECONDS; any save or delete of a Model, ModelAlias, RuleSet or
RoutingRule bumps it after commit, so an admin edit is live everywhere within that time, with no restart and
no database query on the hot path in between.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction

from claudeapp.core.versioned import VersionedCache
from routing.errors import ModelDisabled, UnknownModel

if TYPE_CHECKING:
    from routing.rules import CompiledRule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    model_id: str
    display_name: str
    family: str
    enabled: bool
    context_window: int
    max_output_tokens: int
    fallback_id: str | None
    retires_on: dt.date | None


@dataclass(frozen=True)
class ModelMap:
    models: MappingProxyType[str, ModelInfo]  # every model, enabled or not, by model id
    aliases: MappingProxyType[str, str]  # alias name -> model id
    rules: tuple[CompiledRule, ...] = ()  # the published rule set, in evaluation order
    rule_set_id: int | None = None
    version: str | None = None
    _chains: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def enabled_models(self) -> dict[str, ModelInfo]:
        return {k: m for k, m in self.models.items() if m.enabled}

    def model_id_for(self, name: str) -> str | None:
        """The model id a name means (alias or id), enabled or not; None when unknown."""
        model_id = self.aliases.get(name, name)
        return model_id if model_id in self.models else None

    def resolve(self, name: str) -> str:
        """A model id or alias -> an enabled model id."""
        model_id = self.aliases.get(name, name)
        info = self.models.get(model_id)
        if info is None:
            raise UnknownModel(name)
        if not info.enabled:
            raise ModelDisabled(name, model_id, self.alternatives(model_id))
        return model_id

    def alternatives(self, model_id: str, limit: int = 3) -> tuple[str, ...]:
        """Enabled models to use instead of a disabled one: its fallbacks first, then its family."""
        info = self.models.get(model_id)
        found = [m for m in self._walk_all(model_id) if m != model_id and self.models[m].enabled]
        if info is not None:
            found += [m.model_id for m in self.models.values() if m.enabled and m.family == info.family]
        return tuple(dict.fromkeys(m for m in found if m != model_id))[:limit]

    def _walk_all(self, model_id: str) -> list[str]:
        seen: list[str] = []
        current: str | None = model_id
        while current is not None and current not in seen and current in self.models:
            seen.append(current)
            current = self.models[current].fallback_id
        return seen

    def fallback_chain(self, model_id: str) -> list[str]:
        """The model, then its fallbacks in order: enabled ones only, each once (a cycle ends the chain)."""
        chain = self._chains.get(model_id)
        if chain is None:
            chain = self._walk(model_id)
            self._chains[model_id] = chain  # a benign race: every thread computes the same tuple
        return list(chain)

    def _walk(self, model_id: str) -> tuple[str, ...]:
        seen: list[str] = []
        current: str | None = model_id
        while current is not None and current not in seen:
            info = self.models.get(current)
            if info is None:
                break
            seen.append(current)
            current = info.fallback_id
        return tuple(m for m in seen if self.models[m].enabled)


_cache: VersionedCache[ModelMap] = VersionedCache(
    "modelmap", lambda: load(), refresh=lambda: settings.MODEL_MAP_REFRESH_SECONDS
)


def get_model_map() -> ModelMap:
    """The current snapshot; reloads from Postgres only when the Redis version counter moved."""
    return _cache.get()


async def aget_model_map() -> ModelMap:
    """get_model_map() for async code: free when fresh, a thread hop when it must check Redis or reload."""
    snapshot = _cache.fresh()
    if snapshot is not None:
        return snapshot
    return await sync_to_async(get_model_map, thread_sensitive=False)()


def load(*, version: str | None = None) -> ModelMap:
    from routing import rules
    from routing.models import Model, ModelAlias, RuleSet

    models = {
        m.model_id: ModelInfo(
            model_id=m.model_id,
            display_name=m.display_name,
            family=m.family,
            enabled=m.enabled,
            context_window=m.context_window,
            max_output_tokens=m.max_output_tokens,
            fallback_id=m.fallback.model_id if m.fallback_id else None,
            retires_on=m.retires_on,
        )
        for m in Model.objects.select_related("fallback")
    }
    aliases = {a.name: a.model.model_id for a in ModelAlias.objects.select_related("model")}
    published = RuleSet.objects.filter(status=RuleSet.Status.PUBLISHED).first()
    compiled = rules.compile_rule_set(published.pk) if published else ()
    return ModelMap(
        models=MappingProxyType(models),
        aliases=MappingProxyType(aliases),
        rules=compiled,
        rule_set_id=published.pk if published else None,
        version=version,
    )


def invalidate_local() -> None:
    """Make this process reload on its next read (tests, and right after a local edit)."""
    _cache.clear()


def bump_version() -> None:
    """Tell every process the map changed. Called on commit of any model-map or rule edit."""
    _cache.bump()


def changed() -> None:
    """Signal receivers call this: reload locally now (this transaction sees its own edits), tell others on commit."""
    invalidate_local()
    transaction.on_commit(bump_version)


def resolve_model(name: str) -> str:
    """Model id or alias -> enabled model id. Raises UnknownModel or ModelDisabled."""
    return get_model_map().resolve(name)


def fallback_chain(model_id: str) -> list[str]:
    return get_model_map().fallback_chain(model_id)


@dataclass(frozen=True)
class Dependents:
    """What points at a model: aliases, rules of the draft and live sets, other models' fallbacks."""

    aliases: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    fallback_for: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.aliases or self.rules or self.fallback_for)

    def lines(self) -> list[str]:
        lines = []
        if self.aliases:
            lines.append("aliases " + ", ".join(self.aliases))
        if self.rules:
            lines.append("rules " + ", ".join(self.rules))
        if self.fallback_for:
            lines.append("the fallback of " + ", ".join(self.fallback_for))
        return lines


def dependents(model_id: str) -> Dependents:
    """Read from Postgres (the admin asks before disabling or deleting), not from the snapshot."""
    from django.db.models import Q

    from routing.models import Model, ModelAlias, RoutingRule, RuleSet

    aliases = tuple(ModelAlias.objects.filter(model__model_id=model_id).values_list("name", flat=True))
    names = (model_id, *aliases)
    rules = RoutingRule.objects.filter(
        Q(target__in=names) | Q(requested_model__in=names),
        rule_set__status__in=[RuleSet.Status.DRAFT, RuleSet.Status.PUBLISHED],
    ).select_related("rule_set")
    return Dependents(
        aliases=aliases,
        rules=tuple(f"“{r.name}” ({r.rule_set.status} set)" for r in rules.order_by("rule_set__status", "priority")),
        fallback_for=tuple(Model.objects.filter(fallback__model_id=model_id).values_list("model_id", flat=True)),
    )
