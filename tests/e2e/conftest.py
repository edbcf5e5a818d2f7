"""Browser tests: the real app under uvicorn (a subprocess on the pytest-django test database and the
test emulator), driven by Debian's Chromium through Playwright's sync API.

Playwright's sync API keeps an asyncio loop running in the main thread, which Django's ORM
refuses to share. While the browser is up (this package only) the ORM's check is lifted;
the browser is stopped at the end of the package so later tests see a normal thread again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.live_web import WebServer, database_url, seed_for_web, web_env

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium"))  # Debian's package
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
PASSWORD = "pw-for-tests-123"  # the root conftest's user_factory default


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if item.path.parent == here and not CHROMIUM.exists():
            item.add_marker(pytest.mark.skip(reason=f"{CHROMIUM} is missing: run scripts/ensure_browser.sh"))


@pytest.fixture(scope="package")
def web_server(django_db_setup, django_db_blocker, emulator, tmp_path_factory) -> Iterator[WebServer]:
    from django.db import connection

    env = web_env(
        database=database_url(connection.settings_dict),  # the test database, test_<name>
        emulator_url=emulator.url,
        # DEBUG serves static files from the app directories (no collectstatic); an empty STATIC_ROOT of its
        # own keeps a test run away from ./staticfiles all the same.
        extra={"STATIC_ROOT": str(tmp_path_factory.mktemp("e2e-static"))},
    )
    server = PatientWebServer(env)
    try:
        yield server
    finally:
        server.stop()


class PatientWebServer(WebServer):
    """The package's live server, allowed two minutes to start and ten seconds for its first answer: on a
    loaded machine the import alone can take most of the default 30 s, and the first request (lazy URLconf
    and admin imports) more than the default probe's one second, so probes pile up behind it."""

    def _wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=10).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"uvicorn did not start:\n{self.log()}")


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # see the module docstring
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def seeded_web(transactional_db, web_server, emulator_reset, settings) -> WebServer:
    """Models, prices and rules seeded (as `make run` does), every circuit closed, a fresh emulator."""

    settings.SEED_DEMO_USERS = False  # their password hashes cost a second per test; nobody signs in as them
    seed_for_web()
    return web_server


@pytest.fixture
def new_page(browser, seeded_web) -> Iterator[Callable[..., Any]]:
    """Pages in fresh browser contexts (own cookies); any dialog (alert, confirm) fails the test."""
    contexts, dialogs = [], []

    def make(**context_options: Any) -> Any:
        context = browser.new_context(base_url=seeded_web.url, **context_options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not dialogs, f"a dialog fired: {dialogs}"


@pytest.fixture
def login(seeded_web: WebServer) -> Callable[..., None]:
    """Sign a user in; through the login form with `form=True`, else with a session cookie made
    here (the form costs a full password hash on each side, a second or more per test)."""

    def sign_in(page: Any, user: Any, *, form: bool = False) -> None:
        if form:
            page.goto("/accounts/login/")
            page.fill("input[name=username]", user.username)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
        else:
            from django.test import Client

            client = Client()
            client.force_login(user)
            session = client.cookies["sessionid"].value
            page.context.add_cookies([{"name": "sessionid", "value": session, "url": seeded_web.url}])
            page.goto("/")
        page.wait_for_selector("#composer")

    return sign_in


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# --- the operator's console (test_console_*.py) ----------------------------------------------------


@pytest.fixture
def operator(transactional_db):
    from claudeapp.accounts.models import User

    return User.objects.create(username="olivia", is_staff=True, is_superuser=True)


@pytest.fixture
def console(browser, seeded_web, login, operator) -> Iterator[Any]:
    """A signed-in operator's page; dialogs would fail the flow, CSP reports are collected."""
    from tests.e2e.test_csp_browser import RECORD_VIOLATIONS

    context = browser.new_context(base_url=seeded_web.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.reports = []
    page.on("console", lambda m: "Content Security Policy" in m.text and page.reports.append(m.text))
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog fired: {dialog.message}"))
    login(page, operator)
    yield page
    assert page.evaluate("window.__csp") + page.reports == []
    context.close()
