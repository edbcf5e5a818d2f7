"""Without a version token in Redis the processes agree on one, instead of reloading the map every interval."""

from __future__ import annotations

from django.core.cache import cache
from django.test import override_settings

from routing import modelmap


@override_settings(MODEL_MAP_REFRESH_SECONDS=0)
def test_a_missing_version_token_is_created_once_and_the_map_is_not_reloaded_each_check(db, django_assert_num_queries):
    cache.delete(modelmap.VERSION_KEY)
    modelmap.invalidate_local()
    first = modelmap.get_model_map()
    token = cache.get(modelmap.VERSION_KEY)
    assert token is not None and first.version == token
    with django_assert_num_queries(0):
        assert modelmap.get_model_map() is first
