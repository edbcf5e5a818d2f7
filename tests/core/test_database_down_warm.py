"""Postgres stopped under a warm process: every surface answers 503 naming the database, never a 500,
and answers 200 again once Postgres is back, with no restart.

One exception, by design: a non-streamed /anthropic call that needs nothing of Postgres before upstream (a
key with no budget to hold) is answered, since its reply carries no bill, and billed by the in-flight
reaper once Postgres is back (docs/reliability.md). A 503 there would have been a call upstream charged
for that the SDK then retries and pays again.

tests/core/test_database_down.py covers a cold process (it never reached Postgres). A warm one is what
the issue saw answer 500: pooled connections that Postgres ended, a session and a partner key already
cached. The shared Postgres serves everybody's tests, so this runs on a private Postgres cluster
(tests/chaos/harness.py) that it stops ("fast": every session ended, as a restart does) and starts again.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from tests.chaos.harness import PROJECT_ROOT, Cluster

pytestmark = pytest.mark.timeout(600)

HI = [{"role": "user", "content": "hi"}]
PASSWORD = "a-long-test-password"
MAKE_OPERATOR = (
    "import django; django.setup(); from django.contrib.auth import get_user_model; "
    f"get_user_model().objects.create_superuser('opal', password='{PASSWORD}')"
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with Cluster(webs=1, workers=0, beat=False) as cluster:
        subprocess.run([sys.executable, "-c", MAKE_OPERATOR], cwd=PROJECT_ROOT, env=cluster.env, check=True,
                       capture_output=True, timeout=300)  # fmt: skip
        yield cluster


@pytest.fixture(scope="module")
def browser(cluster: Cluster) -> Iterator[httpx.Client]:
    """A signed-in operator with a conversation of their own (a session and a chat the process has seen)."""
    with httpx.Client(base_url=cluster.webs[0].url, timeout=30) as client:
        form = client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        signed_in = client.post("/accounts/login/", data={"csrfmiddlewaretoken": token, "username": "opal",
                                                          "password": PASSWORD})  # fmt: skip
        assert signed_in.status_code == 302, signed_in.text[:500]
        created = client.post("/c/new", headers={"X-CSRFToken": client.cookies["csrftoken"],
                                                 "Accept": "application/json"})  # fmt: skip
        client.send_url = created.json()["send_url"]  # type: ignore[attr-defined]
        yield client


def _surfaces(cluster: Cluster, browser: httpx.Client) -> dict[str, Any]:
    """One request on each surface; each returns the response."""
    key, url = cluster.keys.main, cluster.webs[0].url
    api = {"Authorization": f"Bearer {key}"}
    native = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    body = {"model": "claude-haiku-5-5", "max_tokens": 16, "messages": HI}
    csrf = {"X-CSRFToken": browser.cookies["csrftoken"]}
    return {
        "api messages": lambda: httpx.post(f"{url}/api/v1/messages", json=body, headers=api, timeout=30),
        "api jobs (DRF)": lambda: httpx.get(f"{url}/api/v1/jobs", headers=api, timeout=30),
        "anthropic": lambda: httpx.post(f"{url}/anthropic/v1/messages", json=body, headers=native, timeout=30),
        "chat page": lambda: browser.get("/"),
        "chat send": lambda: browser.post(browser.send_url, data={"content": "hello"}, headers=csrf),
        "admin": lambda: browser.get("/admin/"),
        "health console": lambda: browser.get("/admin/health/"),
    }


def test_a_warm_process_answers_503_naming_the_database_or_bills_a_billless_reply_later_then_recovers(cluster, browser):
    surfaces = _surfaces(cluster, browser)
    for name, ask in surfaces.items():  # warm: pooled connections, cached session, key and model map
        assert ask().status_code == 200, name

    cluster.pg.stop("fast")
    try:
        down = {name: ask() for name, ask in surfaces.items()}
        ready_status, ready = cluster.readyz()
        client = anthropic.Anthropic(api_key=cluster.keys.main, base_url=f"{cluster.webs[0].url}/anthropic",
                                     max_retries=0)  # fmt: skip
        answered = client.messages.create(model="claude-haiku-5-5", max_tokens=8, messages=HI)
        client.close()
        # Each answered call's settlement waits up to DB_POOL_TIMEOUT for a connection after its reply went
        # out: Postgres back within that wait bills it at once. Stay down until both have given up.
        deadline = time.monotonic() + 60
        while _settlements_given_up(cluster) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        cluster.pg.start()

    anthropic_answer = down.pop("anthropic")
    for name, response in down.items():
        assert response.status_code == 503, (name, response.status_code, response.text[:300])
        assert response.headers["retry-after"] == "5", name
        assert "database" in response.text and "Traceback" not in response.text, (name, response.text[:300])
    assert down["api messages"].json()["error"]["type"] == "service_unavailable"  # its reply carries the bill
    assert ready_status == 503 and ready["failing"] == ["postgres"], ready

    # The /anthropic answers went out; their bills were left on their in-flight records, and the reaper
    # bills each once from upstream's own usage (here run at once instead of after its age limit).
    assert anthropic_answer.status_code == 200, anthropic_answer.text[:300]
    unbilled = [anthropic_answer.json()["id"], answered.id]
    reaper = "import django; django.setup(); from claudeapp.calls import inflight; print(inflight.reap().billed)"
    reaped = subprocess.run([sys.executable, "-c", reaper], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            env={**cluster.env, "CALLS_INFLIGHT_MAX_AGE_SECONDS": "0",
                                 "CALLS_HEARTBEAT_TTL_SECONDS": "0"}, timeout=120)  # fmt: skip
    assert reaped.returncode == 0, reaped.stderr[-2000:]
    billed = cluster.sql("SELECT upstream_message_id, output_tokens FROM billing_ledgerentry "
                         "WHERE upstream_message_id = ANY(%s)", unbilled)  # fmt: skip
    assert sorted(row[0] for row in billed) == sorted(unbilled), (billed, reaped.stdout, reaped.stderr[-2000:])
    assert dict(billed)[answered.id] == answered.usage.output_tokens
    # The process said so once per call, without a traceback each (an outage would bury the log).
    web_log = cluster.webs[0].log_path.read_text(errors="replace")
    assert _settlements_given_up(cluster) == 2, web_log[-3000:]
    assert "its in-flight record is left to the reaper" not in web_log, web_log[-3000:]

    # Back without a restart: the same process answers each surface again once its pool reconnects.
    for name, ask in surfaces.items():
        deadline = time.monotonic() + 30
        while (status := ask().status_code) != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert status == 200, name
    assert cluster.webs[0].proc.poll() is None


def _settlements_given_up(cluster: Cluster) -> int:
    web_log = cluster.webs[0].log_path.read_text(errors="replace")
    return web_log.count("settling an answered call failed (database unavailable")
