"""The model map is one of core.versioned's per-process caches: no reload while the version stands
(even with no version in Redis at all), a reload once a save bumps it."""

from __future__ import annotations

from django.test import override_settings

from claudeapp.core.redisconn import client
from claudeapp.core.versioned import version_key
from routing import modelmap


@override_settings(MODEL_MAP_REFRESH_SECONDS=0)
def test_the_map_reloads_only_when_its_version_moves(db, django_assert_num_queries):
    client().delete(version_key("modelmap"))
    modelmap.invalidate_local()
    first = modelmap.get_model_map()
    with django_assert_num_queries(0):  # no version yet: every process keeps its copy, none reloads
        assert modelmap.get_model_map() is first
    client().incr(version_key("modelmap"))  # another process saved an edit
    second = modelmap.get_model_map()
    assert second is not first
    with django_assert_num_queries(0):
        assert modelmap.get_model_map() is second
