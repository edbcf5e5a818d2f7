"""Browser tests: the real app under uvicorn (a subprocess on the pytest-django test database and the
test emulator), driven by Debian's Chromium through Playwright's sync API.

Playwright's sync API keeps an asyncio loop running in the main thread, which Django's ORM
refuses to share. While the browser is up (this package only) the ORM's check is lifted;
the browser is stopped at the end of the package so later tests see a normal thread again.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import httpx
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium"))  # Debian's package
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
PASSWORD = "pw-for-tests-123"  # the root conftest's user_factory default
GATEWAY_MODELS = ("claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5")
# The web process reloads prices and the model map on every read (each test reseeds them with
# new ids), retries fast, and never opens a circuit because of one test's injected faults.
WEB_ENV = {
    "DEBUG": "1",
    "ANTHROPIC_API_KEY": "",
    "BILLING_CACHE_SECONDS": "0",
    "MODEL_MAP_REFRESH_SECONDS": "0",
    "CLAUDE_RETRY_BASE_SECONDS": "0.01",
    "CLAUDE_RETRY_MAX_SECONDS": "0.05",
    "CLAUDE_BREAKER_FAILURE_THRESHOLD": "100000",
    "DB_POOL_MAX_SIZE": "10",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if item.path.parent == here and not CHROMIUM.exists():
            item.add_marker(pytest.mark.skip(reason=f"{CHROMIUM} is missing: run scripts/ensure_browser.sh"))


def _database_url(settings_dict: dict[str, Any]) -> str:
    auth = settings_dict["USER"] + (f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else "")
    return f"postgres://{auth}@{settings_dict['HOST']}:{settings_dict['PORT']}/{settings_dict['NAME']}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebServer:
    """`uvicorn claudeapp.asgi:application` in a subprocess; its log is kept for failure messages."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(tempfile.mkdtemp(prefix="e2e-web-")) / "uvicorn.log"
        argv = [sys.executable, "-m", "uvicorn", "claudeapp.asgi:application", "--host", "127.0.0.1",
                "--port", str(self.port), "--lifespan", "off", "--timeout-graceful-shutdown", "2"]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"uvicorn did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="package")
def web_server(django_db_setup, django_db_blocker, emulator, tmp_path_factory) -> Iterator[WebServer]:
    from django.conf import settings
    from django.db import connection

    env = {
        **os.environ,
        **WEB_ENV,
        "DJANGO_SETTINGS_MODULE": "tests.e2e.web_settings",
        "E2E_STATIC_ROOT": str(tmp_path_factory.mktemp("e2e-static")),
        "DATABASE_URL": _database_url(connection.settings_dict),  # the test database, test_<name>
        "REDIS_URL": settings.REDIS_URL,
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "ANTHROPIC_BASE_URL": emulator.url,
    }
    # The chat and admin assets are enough; the API docs' bundles would double the copy time.
    manage = [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0",
              "-i", "drf_spectacular_sidecar", "-i", "rest_framework"]  # fmt: skip
    subprocess.run(manage, cwd=PROJECT_ROOT, env=env, check=True)
    server = WebServer(env)
    try:
        yield server
    finally:
        server.stop()


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
    from django.core.management import call_command

    settings.SEED_DEMO_USERS = False  # their password hashes cost a second per test; nobody signs in as them
    from billing import prices, redisconn
    from claudeapp.claude import breaker
    from routing import modelmap

    call_command("seed", stdout=StringIO())
    prices._cache.clear()
    # Each test reseeds with new row ids: move the shared version keys so the web process reloads.
    redisconn.client().set(redisconn.key("version", "prices"), uuid.uuid4().int % 2**62)
    modelmap.bump_version()
    for model in GATEWAY_MODELS:
        breaker.reset(model)
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
