"""Content-Security-Policy on the pages Django renders, and no template that would need 'unsafe-inline'
for scripts (the browser proof, Chromium with zero violations, is tests/e2e/test_csp_browser.py)."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

pytestmark = pytest.mark.django_db

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.fixture
def operator(client, user_factory):
    call_command("seed", stdout=StringIO())
    client.force_login(user_factory(is_staff=True, is_superuser=True))
    return client


HTML_PAGES = ["/", "/usage/", "/my/jobs/", "/admin/", "/admin/billing/budget/", "/admin/billing/budget/add/",
              "/billing/dashboard/", "/admin/breakers/", "/api/docs/"]  # fmt: skip


@pytest.mark.parametrize("path", HTML_PAGES)
def test_every_html_page_carries_a_policy_without_inline_scripts(operator, path):
    response = operator.get(path)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    policy = _directives(response)
    assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    script = policy["script-src"]
    assert script[0] == "'self'" and "'unsafe-inline'" not in script and "'unsafe-eval'" not in script
    assert all(source.startswith("'nonce-") for source in script[1:])


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_the_sign_in_pages_carry_it_too(client, path):
    assert "script-src 'self'" in client.get(path)["Content-Security-Policy"]


def test_the_api_docs_inline_start_up_script_runs_by_this_requests_nonce(operator):
    response = operator.get("/api/docs/")
    nonce = re.search(r"'nonce-([^']+)'", _directives(response)["script-src"][1]).group(1)
    html = response.content.decode()
    inline = re.findall(r"<script(?![^>]*\ssrc=)([^>]*)>", html)
    assert inline and all(f'nonce="{nonce}"' in attributes for attributes in inline)
    assert "/static/drf_spectacular_sidecar/" in html  # the bundles come from our origin, not a CDN


def test_no_project_template_has_an_inline_script_or_event_handler():
    roots = [PROJECT_ROOT / "templates", *PROJECT_ROOT.glob("*/templates"), *PROJECT_ROOT.glob("claudeapp/*/templates")]
    offenders = []
    for template in (path for root in roots for path in root.rglob("*.html")):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            if " src=" not in tag and "csp_nonce" not in tag:
                offenders.append(f"{template}: {tag}")
        offenders += [f"{template}: {m}" for m in re.findall(r"<[^>]*\son[a-z]+\s*=", text)]
        offenders += [f"{template}: {m}" for m in re.findall(r"javascript:", text)]
        for tag in re.findall(r"<style\b[^>]*>", text):
            if "csp_nonce" not in tag:
                offenders.append(f"{template}: {tag}")
    assert offenders == []
    assert settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["script-src"][0] == "'self'"
