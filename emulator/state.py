"""Everything the running emulator remembers; `reset()` returns it to the startup state."""

from __future__ import annotations

from typing import Any

from emulator.batches import BatchStore
from emulator.cache import PromptCache
from emulator.clock import Clock
from emulator.config import Config
from emulator.faults import FaultBook, FaultSpec, parse_spec
from emulator.ledger import Ledger
from emulator.ratelimit import RateLimiter
from emulator.stats import Stats


class State:
    def __init__(self, config: Config) -> None:
        self.startup_config = config
        self.clock = Clock()
        self.cache = PromptCache()
        self.batches = BatchStore()
        self._install(config)

    def _install(self, config: Config) -> None:
        self.config = config
        self.stats = Stats(config.recent_requests)
        self.ledger = Ledger(config.ledger_size)
        self.faults = FaultBook(config.seed)
        self.ratelimit = RateLimiter(config, self.clock.now())
        self._model_faults = self._parse_model_faults(config)

    @staticmethod
    def _parse_model_faults(config: Config) -> dict[str, FaultSpec]:
        specs = {model: parse_spec(raw) for model, raw in config.model_faults.items()}
        bad = [model for model, spec in specs.items() if spec is None]
        if bad:
            raise ValueError(f"model_faults: invalid fault spec for {', '.join(bad)}")
        return {model: spec for model, spec in specs.items() if spec is not None}

    def model_fault(self, model: str) -> FaultSpec | None:
        return self._model_faults.get(model)

    def update_config(self, patch: dict[str, Any]) -> Config:
        """Merge runtime config; limits and the RNG restart, counters, charges and caches are kept."""
        config = self.config.merged(patch)
        stats, counts, ledger = self.stats, self.faults.counts, self.ledger
        self._install(config)
        stats.recent = type(stats.recent)(stats.recent, maxlen=max(1, config.recent_requests))
        self.stats, self.faults.counts, self.ledger = stats, counts, ledger.resized(config.ledger_size)
        return config

    def reset(self) -> None:
        self.clock.reset()
        self.cache.clear()
        self.batches.clear()
        self._install(self.startup_config)
