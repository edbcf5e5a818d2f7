from __future__ import annotations

import uuid

import pytest

from claudeapp.claude import breaker as breaker_mod


class FakeClock:
    """A wall clock the test moves by hand (the breaker takes `now` from it)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def breaker(clock):
    return breaker_mod.Breaker(clock=clock)


@pytest.fixture
def model_id():
    """A model id nobody else uses, so breaker state never leaks between tests."""
    ids = []

    def make() -> str:
        ids.append(f"test-model-{uuid.uuid4().hex[:10]}")
        return ids[-1]

    yield make
    for model in ids:
        breaker_mod.reset(model)
