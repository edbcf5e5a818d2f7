"""The chat's model picker: Auto, the aliases operators defined (each naming the model it stands for),
then the enabled models. Read from the cached model map, so the page asks Postgres nothing for it."""

from __future__ import annotations

from dataclasses import dataclass

from routing import modelmap


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True)
class Picker:
    aliases: list[Choice]
    models: list[Choice]


def model_picker() -> Picker:
    mm = modelmap.get_model_map()
    enabled = mm.enabled_models
    aliases = [
        Choice(name, f"{name} → {enabled[target].display_name}")
        for name, target in sorted(mm.aliases.items())
        if target in enabled  # an alias of a disabled model would only be refused
    ]
    return Picker(aliases=aliases, models=[Choice(m.model_id, m.display_name) for m in enabled.values()])
