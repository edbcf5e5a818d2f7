"""Ids drawn ahead from a table's sequence (claudeapp/core/idblocks.py), on real Postgres: never handed out
twice (two blocks, a forked child, rows numbered by the column's own default), a block drawn per `size`."""

from __future__ import annotations

import os
from io import StringIO

import pytest

from billing import seed
from billing.models import PriceVersion, Reservation
from claudeapp.core import rows
from claudeapp.core.idblocks import IdBlock
from routing import seed as routing_seed

pytestmark = pytest.mark.django_db(transaction=True)


def _unsaved(price: PriceVersion) -> Reservation:
    return Reservation(
        principal_kind="user", principal_id=1, model_id="claude-haiku-4-5", price_version=price, amount_micros=1
    )


def test_ids_are_never_handed_out_twice(django_assert_num_queries):
    one, two = IdBlock("billing.Reservation", size=4), IdBlock("billing.Reservation", size=4)
    one.next()  # the sequence's name and the first block
    with django_assert_num_queries(0):
        drawn = [one.next() for _ in range(3)]
    drawn += [two.next() for _ in range(4)]
    with django_assert_num_queries(1):  # the next block, one query
        drawn.append(one.next())
    assert len(set(drawn)) == len(drawn)


def test_a_forked_child_draws_its_own(monkeypatch):
    block = IdBlock("billing.Reservation", size=8)
    parents = block.next()
    monkeypatch.setattr(os, "getpid", lambda: -1)  # as a forked child would see it
    assert block.next() > parents + 6  # a new block: the parent's remaining seven are the parent's


def test_a_row_written_under_a_drawn_id_and_one_numbered_by_default_never_collide():
    routing_seed.run(stdout=StringIO())
    seed.run(stdout=StringIO())
    price = PriceVersion.objects.first()
    drawn = _unsaved(price)
    drawn.pk = IdBlock("billing.Reservation").next()
    assert rows.insert(drawn) == drawn.pk
    numbered = _unsaved(price)
    rows.insert(numbered)
    assert numbered.pk != drawn.pk
    assert sorted(Reservation.objects.values_list("pk", flat=True)) == sorted([drawn.pk, numbered.pk])
