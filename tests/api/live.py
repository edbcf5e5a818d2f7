"""The gateway under uvicorn in a subprocess, on the pytest-django test database and the test
emulator: what the official SDK and schemathesis talk to over real HTTP (real ASGI streaming)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from io import StringIO
from pathlib import Path
from typing import Any

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[2]
GATEWAY_MODELS = ("claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5")
# Prices, policies and the model map are re-read on every request (tests create them just before
# calling); retries are quick and no circuit opens because of one test's injected faults.
WEB_ENV = {
    "DEBUG": "1",  # as the test process: same SECRET_KEY, so the same partner-key pepper
    "SEED_DEMO_USERS": "0",
    "ANTHROPIC_API_KEY": "",
    "BILLING_CACHE_SECONDS": "0",
    "MODEL_MAP_REFRESH_SECONDS": "0",
    "PARTNER_KEY_CACHE_SECONDS": "0",
    "CLAUDE_RETRY_BASE_SECONDS": "0.01",
    "CLAUDE_RETRY_MAX_SECONDS": "0.05",
    "CLAUDE_RETRY_AFTER_CAP_SECONDS": "1",
    "CLAUDE_BREAKER_FAILURE_THRESHOLD": "100000",
    "DB_POOL_MAX_SIZE": "10",
}


def database_url(settings_dict: dict[str, Any]) -> str:
    auth = settings_dict["USER"] + (f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else "")
    return f"postgres://{auth}@{settings_dict['HOST']}:{settings_dict['PORT']}/{settings_dict['NAME']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebServer:
    """`uvicorn claudeapp.asgi:application` in a subprocess; its log is kept for failure messages."""

    def __init__(self, env: dict[str, str], *, workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(tempfile.mkdtemp(prefix="api-web-")) / "uvicorn.log"
        argv = [sys.executable, "-m", "uvicorn", "claudeapp.asgi:application", "--host", "127.0.0.1",
                "--port", str(self.port), "--lifespan", "off", "--timeout-graceful-shutdown", "2",
                "--no-access-log", "--workers", str(workers)]  # fmt: skip
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


def web_env(*, database: str, emulator_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    from django.conf import settings

    return {
        **os.environ,
        **WEB_ENV,
        "DJANGO_SETTINGS_MODULE": "claudeapp.settings",
        "DATABASE_URL": database,
        "REDIS_URL": settings.REDIS_URL,
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "ANTHROPIC_BASE_URL": emulator_url,
        **(extra or {}),
    }


def seed_for_web() -> None:
    """Seed models, prices and rules, and make every process see them now (new row ids each test)."""
    from django.core.management import call_command

    from billing import prices, redisconn
    from claudeapp.claude import breaker
    from routing import modelmap

    call_command("seed", stdout=StringIO())
    prices._cache.clear()
    redisconn.client().set(redisconn.key("version", "prices"), uuid.uuid4().int % 2**62)
    modelmap.bump_version()
    for model in GATEWAY_MODELS:
        breaker.reset(model)
