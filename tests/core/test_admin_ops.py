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


def _staff_with(user_factory, *perms):
    from django.contrib.auth.models import Permission

    user = user_factory(is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


def test_staff_without_model_permissions_cannot_see_or_close_circuits(client, user_factory):
    model_id = "claude-haiku-5-5"
    call_command("seed", stdout=StringIO())
    breaker.reset(model_id)
    _open_circuit(model_id)
    client.force_login(_staff_with(user_factory, "billing.view_budget"))
    page = client.get("/admin/breakers/")
    assert page.status_code == 403 and model_id.encode() not in page.content
    assert client.post(f"/admin/breakers/{model_id}/close").status_code == 403
    assert breaker.state(model_id).state is BreakerState.OPEN
    assert b"/admin/breakers/" not in client.get("/admin/").content


def test_viewing_circuits_takes_view_model_and_closing_one_takes_change_model(client, user_factory):
    model_id = "claude-haiku-5-5"
    call_command("seed", stdout=StringIO())
    breaker.reset(model_id)
    _open_circuit(model_id)
    client.force_login(_staff_with(user_factory, "routing.view_model"))
    assert client.get("/admin/breakers/").status_code == 200
    assert client.post(f"/admin/breakers/{model_id}/close").status_code == 403
    assert breaker.state(model_id).state is BreakerState.OPEN
    client.force_login(_staff_with(user_factory, "routing.view_model", "routing.change_model"))
    assert client.post(f"/admin/breakers/{model_id}/close").status_code == 302
    assert breaker.state(model_id).state is BreakerState.CLOSED


def test_dead_letter_actions_take_the_change_permission(client, user_factory):
    from django.contrib import admin
    from django.test import RequestFactory

    from claudeapp.jobs.models import DeadJob, Job, MessageBatch

    request = RequestFactory().get("/admin/jobs/deadjob/")
    for perms, allowed in ((("jobs.view_job", "jobs.view_deadjob", "jobs.view_messagebatch"), False),
                           (("jobs.view_job", "jobs.change_job", "jobs.view_deadjob", "jobs.change_deadjob",
                             "jobs.change_messagebatch"), True)):  # fmt: skip
        request.user = _staff_with(user_factory, *perms)
        for model, names in ((Job, {"requeue_jobs", "discard_jobs"}), (DeadJob, {"requeue_jobs", "discard_jobs"}),
                             (MessageBatch, {"cancel_upstream"})):  # fmt: skip
            actions = set(admin.site._registry[model].get_actions(request))
            assert (names <= actions) is allowed and (not names & actions) is not allowed, (model, perms, actions)
