from __future__ import annotations

import uuid
from io import StringIO

import pytest

from claudeapp.accounts.principals import Principal
from claudeapp.claude import client
from routing import modelmap
from routing import seed as routing_seed
from routing.models import RoutingRule, RuleSet
from routing.services import RouteRequest


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
def isolated_cache(settings):
    """A cache key prefix of its own per test: no classifier label or map version leaks between tests or runs."""
    caches = {name: dict(conf) for name, conf in settings.CACHES.items()}
    caches["default"]["KEY_PREFIX"] = f"{caches['default'].get('KEY_PREFIX', '')}-rt-{uuid.uuid4().hex[:8]}"
    settings.CACHES = caches  # Django drops its cache handlers on this change
    settings.ROUTER_CLASSIFIER_CACHE_SECONDS = 120
    yield caches["default"]["KEY_PREFIX"]
    from claudeapp.core.redisconn import client
    from claudeapp.core.versioned import version_key

    client().delete(version_key("modelmap"))


@pytest.fixture(autouse=True)
def fresh_model_map():
    # Each test has its own database rows: never reuse another test's snapshot.
    modelmap.invalidate_local()
    yield
    modelmap.invalidate_local()


@pytest.fixture
def model_map(db):
    """The seeded models and aliases, no rules."""
    routing_seed._seed_models(StringIO())
    modelmap.invalidate_local()


@pytest.fixture
def seeded(db):
    """Models, aliases and the seeded published rule set."""
    routing_seed.run(stdout=StringIO())
    modelmap.invalidate_local()


@pytest.fixture
def published_set(model_map):
    return RuleSet.objects.create(name="Live", status=RuleSet.Status.PUBLISHED)


@pytest.fixture
def rule_factory(published_set):
    """Create a rule (in the published set unless rule_set= is given), validated like the admin does."""

    def make(**fields):
        fields.setdefault("rule_set", published_set)
        fields.setdefault("name", f"rule {uuid.uuid4().hex[:6]}")
        rule = RoutingRule(**fields)
        rule.full_clean()
        rule.save()
        return rule

    return make


@pytest.fixture
def classifier_emulator(settings, emulator, emulator_reset):
    """The SDK pointed at the test emulator, whose classifier answers heuristic labels."""
    settings.ANTHROPIC_BASE_URL = emulator.url
    client.reset_clients()
    yield emulator
    client.reset_clients()


@pytest.fixture
def make_request():
    def make(text: str = "hello there", **fields) -> RouteRequest:
        fields.setdefault("principal", Principal(kind="user", id=1, user_id=1))
        fields.setdefault("messages", [{"role": "user", "content": text}])
        return RouteRequest(**fields)

    return make
