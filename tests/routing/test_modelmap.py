from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.db import connection

from routing import modelmap
from routing.errors import ModelDisabled, UnknownModel
from routing.models import Model, ModelAlias

ROOT = Path(__file__).resolve().parents[2]


def test_an_alias_and_a_model_id_both_resolve_to_the_enabled_model(model_map):
    assert modelmap.resolve_model("moderate") == "claude-sonnet-5-5"
    assert modelmap.resolve_model("claude-opus-5-5") == "claude-opus-5-5"


def test_an_unknown_name_raises_unknown_model_carrying_the_name(model_map):
    with pytest.raises(UnknownModel) as exc:
        modelmap.resolve_model("claude-gpt-9")
    assert exc.value.name == "claude-gpt-9"


def test_a_disabled_model_raises_model_disabled_even_through_an_alias(model_map):
    Model.objects.filter(model_id="claude-haiku-5-5").update(enabled=False)
    modelmap.invalidate_local()
    with pytest.raises(ModelDisabled) as exc:
        modelmap.resolve_model("simple")
    assert exc.value.model_id == "claude-haiku-5-5"


def test_the_fallback_chain_follows_fallbacks_and_skips_disabled_models(model_map):
    assert modelmap.fallback_chain("claude-opus-5-5") == ["claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5"]
    Model.objects.filter(model_id="claude-sonnet-5-5").update(enabled=False)
    modelmap.invalidate_local()
    assert modelmap.fallback_chain("claude-opus-5-5") == ["claude-opus-5-5", "claude-haiku-5-5"]


def test_a_fallback_cycle_ends_the_chain_instead_of_looping(model_map):
    haiku = Model.objects.get(model_id="claude-haiku-5-5")
    haiku.fallback = Model.objects.get(model_id="claude-opus-5-5")
    haiku.save()
    assert modelmap.fallback_chain("claude-opus-5-5") == ["claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5"]


def test_a_saved_alias_is_seen_by_this_process_at_once(model_map):
    modelmap.get_model_map()
    ModelAlias.objects.create(name="cheap", model=Model.objects.get(model_id="claude-haiku-5-5"))
    assert modelmap.resolve_model("cheap") == "claude-haiku-5-5"


def test_the_snapshot_is_reused_between_refreshes_without_queries(model_map, django_assert_num_queries):
    modelmap.get_model_map()
    with django_assert_num_queries(0):
        for _ in range(50):
            modelmap.resolve_model("complex")


CHILD = textwrap.dedent(
    """
    import sys, time, django
    django.setup()
    from claudeapp.core import invalidation
    from routing import modelmap
    from routing.errors import ModelDisabled
    resolved = modelmap.resolve_model("complex")
    while not invalidation.listening():  # so that the edit reaches it as a message, not by its next check
        time.sleep(0.02)
    modelmap.resolve_model("complex")  # checked once more since subscribing: trusted from here on
    print("ready", resolved, flush=True)
    sys.stdin.readline()  # the parent edits the model now
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            modelmap.resolve_model("complex")
        except ModelDisabled:
            print("disabled", flush=True)
            break
        time.sleep(0.05)
    else:
        print("never saw the change", flush=True)
    """
)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("refresh", ["0.2", "3600"], ids=["refresh-0.2s", "refresh-1h-so-only-the-message"])
def test_an_admin_edit_reaches_another_process_at_once(model_map, isolated_cache, settings, refresh):
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "claudeapp.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CACHE_KEY_PREFIX": isolated_cache,
        "MODEL_MAP_REFRESH_SECONDS": refresh,
        "DB_POOL": "0",
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().split() == ["ready", "claude-opus-5-5"]
        opus = Model.objects.get(model_id="claude-opus-5-5")
        opus.enabled = False
        opus.save()  # what the admin's list_editable toggle does
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "disabled"
    finally:
        child.kill()
        child.wait()
