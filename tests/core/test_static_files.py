"""Static files on a live uvicorn, with and without collectstatic: the admin's CSS and the chat's JS
answer 200, a missing file a plain 404 (it used to be a 500 with a traceback when STATIC_ROOT was empty)."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from tests.fixtures.live_web import PROJECT_ROOT, WebServer, web_env

# See tests/core/test_database_down.py: only so that pytest-django creates the test database.
pytestmark = pytest.mark.django_db

PRODUCTION = {"DEBUG": "0", "SECRET_KEY": "static-files-test-" + "x" * 40, "SECURE_SSL_REDIRECT": "0"}


def _server(static_root, extra: dict[str, str]) -> WebServer:
    env = web_env(
        database="postgres://postgres@127.0.0.1:9/unused",  # static files never reach Django or the database
        emulator_url="http://127.0.0.1:9",
        extra={"STATIC_ROOT": str(static_root), **extra},
    )
    return WebServer(env)


@pytest.fixture(scope="module", params=["debug", "production-without-collectstatic"])
def web(request, tmp_path_factory):
    server = _server(tmp_path_factory.mktemp("empty-static-root"), {} if request.param == "debug" else PRODUCTION)
    yield server
    server.stop()


def test_the_admin_css_and_the_chat_js_are_served(web):
    css = httpx.get(f"{web.url}/static/admin/css/base.css")
    assert css.status_code == 200, web.log()
    assert css.headers["content-type"].startswith("text/css") and b"body" in css.content
    js = httpx.get(f"{web.url}/static/chat/chat.js")
    assert js.status_code == 200
    assert "javascript" in js.headers["content-type"] and b"composer" in js.content
    assert httpx.head(f"{web.url}/static/chat/chat.css").status_code == 200


@pytest.mark.parametrize(
    "path", ["/static/chat/missing.js", "/static/admin/", "/static/", "/static/../claudeapp/settings.py",
             "/static/admin/../../claudeapp/settings.py", "/static/%2e%2e/manage.py", "/static/chat/chat.js%00"],
)  # fmt: skip
def test_a_missing_or_outside_file_is_a_plain_404(web, path):
    response = httpx.get(f"{web.url}{path}")
    assert response.status_code == 404
    assert "Traceback" not in response.text and "SECRET_KEY" not in response.text


def test_a_collected_static_root_is_served_compressed_with_cache_headers(tmp_path):
    env = web_env(database="postgres://postgres@127.0.0.1:9/unused", emulator_url="http://127.0.0.1:9",
                  extra={"STATIC_ROOT": str(tmp_path), **PRODUCTION})  # fmt: skip
    manage = [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0",
              "-i", "drf_spectacular_sidecar", "-i", "rest_framework"]  # fmt: skip
    subprocess.run(manage, cwd=PROJECT_ROOT, env=env, check=True)
    assert (tmp_path / "chat" / "chat.js.gz").exists()  # written by the compressing storage
    server = WebServer(env)
    try:
        js = httpx.get(f"{server.url}/static/chat/chat.js", headers={"Accept-Encoding": "gzip"})
        assert js.status_code == 200
        assert js.headers["content-encoding"] == "gzip" and b"composer" in js.content
        assert "max-age=" in js.headers["cache-control"]
        assert httpx.get(f"{server.url}/static/chat/missing.js").status_code == 404
    finally:
        server.stop()
