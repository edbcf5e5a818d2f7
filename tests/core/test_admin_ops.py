from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from claudeapp.claude import breaker
from claudeapp.claude.breaker import BreakerState

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, user_factory):
    call_command("seed", stdout=StringIO())
    client.force_login(user_factory(is_staff=True, is_superuser=True))
    return client


def _open_circuit(model_id: str) -> None:
    brk = breaker.Breaker()
    for _ in range(50):
        ticket = brk.allow(model_id)
        if not ticket.allowed:
            return
        brk.record_failure(ticket)


def test_admin_index_links_the_operator_pages(staff_client):
    body = staff_client.get("/admin/").content.decode()
    for link in ("/billing/dashboard/", "/admin/breakers/", "/api/docs/"):
        assert link in body


def test_breakers_page_shows_an_open_circuit_and_closes_it(staff_client):
    model_id = "claude-haiku-5-5"
    breaker.reset(model_id)
    _open_circuit(model_id)
    assert breaker.state(model_id).state is BreakerState.OPEN
    body = staff_client.get("/admin/breakers/").content.decode()
    assert "claude-haiku-5-5" in body and "open" in body
    response = staff_client.post(f"/admin/breakers/{model_id}/close")
    assert response.status_code == 302
    assert breaker.state(model_id).state is BreakerState.CLOSED


def test_breakers_page_is_staff_only(client, user_factory):
    client.force_login(user_factory())
    assert client.get("/admin/breakers/").status_code == 302  # to the admin login
    assert client.post("/admin/breakers/claude-haiku-5-5/close").status_code == 302
