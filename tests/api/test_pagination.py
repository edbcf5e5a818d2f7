from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.exceptions import ValidationError

from claudeapp.api.models import PartnerKey
from claudeapp.api.pagination import filter_date_range
from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db


def test_list_pages_follow_next_links_until_the_end(client, partner_key_factory, user_factory):
    owner = user_factory()
    made = [partner_key_factory(owner=owner, name=f"k{i}") for i in range(5)]
    names, url = [], "/api/v1/_test/keys?limit=2"
    while url:
        page = client.get(url, **bearer(made[0])).json()
        assert len(page["data"]) <= 2
        names += [row["name"] for row in page["data"]]
        url = page["next"]
    assert names == ["k4", "k3", "k2", "k1", "k0"]


def _stamp(key, when):
    PartnerKey.objects.filter(pk=key.pk).update(created_at=when)


def test_the_date_range_filter_includes_after_and_the_whole_before_day(partner_key_factory, user_factory):
    owner = user_factory()
    keys = [partner_key_factory(owner=owner, name=f"d{day}") for day in (1, 2, 3)]
    for key, day in zip(keys, (1, 2, 3), strict=True):
        _stamp(key, dt.datetime(2026, 11, day, 12, tzinfo=dt.UTC))
    qs = PartnerKey.objects.filter(owner=owner)
    picked = filter_date_range(qs, {"created_after": "2026-11-02", "created_before": "2026-11-02"})
    assert [key.name for key in picked] == ["d2"]
    picked = filter_date_range(qs, {"created_after": "2026-11-01T13:00:00Z"})
    assert sorted(key.name for key in picked) == ["d2", "d3"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_before": "2026-02-30"}, "created_before"),
        ({"created_after": "2026-11-03", "created_before": "2026-11-01"}, "created_before"),
    ],
)
def test_bad_dates_are_validation_errors_naming_the_parameter(params, field):
    with pytest.raises(ValidationError) as caught:
        filter_date_range(PartnerKey.objects.all(), params)
    assert field in caught.value.detail


def test_a_bad_date_on_an_endpoint_is_a_400_naming_it(client, partner_key_factory):
    response = client.get("/api/v1/_test/keys?created_after=soon", **bearer(partner_key_factory()))
    assert response.status_code == 400 and response.json()["error"]["field"] == "created_after"
