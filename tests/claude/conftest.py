from __future__ import annotations

import uuid

import pytest

from claudeapp.claude import breaker as breaker_mod
from claudeapp.claude import client

GATEWAY_MODELS = ("claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5")


class FakeClock:
    """A wall clock the test moves by hand (the breaker takes `now` from it)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def anyio_backend():
    return "asyncio"


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


@pytest.fixture
def breaker_settings(settings):
    settings.CLAUDE_BREAKER_FAILURE_THRESHOLD = 3
    settings.CLAUDE_BREAKER_WINDOW_SECONDS = 60.0
    settings.CLAUDE_BREAKER_COOLDOWN_SECONDS = 30.0
    settings.CLAUDE_BREAKER_HALF_OPEN_PROBES = 1
    settings.CLAUDE_BREAKER_PROBE_LEASE_SECONDS = 120.0
    return settings


@pytest.fixture
def gateway_settings(settings, emulator, emulator_reset, breaker_settings):
    """Point the SDK at the test emulator, make retries quick and start with every circuit closed."""
    settings.ANTHROPIC_BASE_URL = emulator.url
    settings.CLAUDE_MAX_ATTEMPTS = 3
    settings.CLAUDE_RETRY_BASE_SECONDS = 0.01
    settings.CLAUDE_RETRY_MAX_SECONDS = 0.05
    settings.CLAUDE_RETRY_AFTER_CAP_SECONDS = 1.0
    client.reset_clients()
    for model in GATEWAY_MODELS:
        breaker_mod.reset(model)
    yield settings
    client.reset_clients()
    for model in GATEWAY_MODELS:
        breaker_mod.reset(model)


@pytest.fixture
async def aclose_loop_clients():
    """Close the SDK client and Redis pool of the test's event loop before the loop goes away."""
    yield
    await client.aclose_async_client()
    await breaker_mod.aclose_connections()
