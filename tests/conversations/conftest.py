from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.fixture
def seeded(transactional_db):
    """Models, aliases, prices and rules as `make run` seeds them."""
    call_command("seed", stdout=StringIO())


@pytest.fixture
def chat_user(seeded, user_factory):
    return user_factory(username="chatter")
