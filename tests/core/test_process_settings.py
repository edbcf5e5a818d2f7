"""Settings a web process reads once at startup, each case in a process of its own (they are process-wide):
GC_THRESHOLD (claudeapp/asgi.py sets the cyclic collector's thresholds from it; empty keeps Python's own;
anything but three positive integers stops startup naming the setting) and CALLS_SETTLE_BATCHES_IN_FLIGHT
(half of DB_THREADS unless set, so admissions keep threads of their own; below 1 stops startup)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROBE = "import gc, claudeapp.asgi; print(gc.get_threshold())"


SETTLE_PROBE = (
    "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'claudeapp.settings'); django.setup(); "
    "from django.conf import settings; print(settings.CALLS_SETTLE_BATCHES_IN_FLIGHT)"
)


def _start(value: str | None, *, name: str = "GC_THRESHOLD", probe: str = PROBE, **more: str):
    env = {k: v for k, v in os.environ.items() if k not in (name, *more)}
    if value is not None:
        env[name] = value
    env.update(more)
    return subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize(
    ("value", "thresholds"),
    [(None, "(50000, 20, 10)"), ("1234,5,6", "(1234, 5, 6)"), ("", "(700, 10, 10)")],
    ids=["default", "set", "empty-is-python-s-own"],
)
def test_the_web_process_takes_its_collector_thresholds_from_the_setting(value, thresholds):
    started = _start(value)
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip().splitlines()[-1] == thresholds


@pytest.mark.parametrize("value", ["0,10,10", "5000,10", "a,b,c"], ids=["zero-turns-gc-off", "two", "not-numbers"])
def test_a_bad_value_stops_startup_naming_the_setting(value):
    started = _start(value)
    assert started.returncode != 0
    assert "GC_THRESHOLD: three positive integers" in started.stderr


@pytest.mark.parametrize(
    ("value", "threads", "in_flight"),
    [(None, "8", "4"), (None, "5", "2"), (None, "1", "1"), ("3", "8", "3")],
    ids=["half-of-8", "half-of-5", "one-thread", "set"],
)
def test_settlement_batches_in_flight_default_to_half_the_database_threads(value, threads, in_flight):
    started = _start(value, name="CALLS_SETTLE_BATCHES_IN_FLIGHT", probe=SETTLE_PROBE, DB_THREADS=threads)
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip().splitlines()[-1] == in_flight


def test_settlement_batches_in_flight_below_one_stops_startup():
    started = _start("0", name="CALLS_SETTLE_BATCHES_IN_FLIGHT", probe=SETTLE_PROBE)
    assert started.returncode != 0 and "CALLS_SETTLE_BATCHES_IN_FLIGHT must be at least 1" in started.stderr


WORKER_PROBE = """
import multiprocessing, os, sys


def worker(queue):
    import claudeapp.asgi  # noqa: F401
    queue.put(os.environ.get("UV_TCP_SINGLE_ACCEPT"))


if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())
    if sys.argv[1] == "lone":
        import claudeapp.asgi  # noqa: F401
        print(os.environ.get("UV_TCP_SINGLE_ACCEPT"))
    else:  # as `uvicorn --workers N` starts its workers: spawned children of one supervisor
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        child = context.Process(target=worker, args=(queue,))
        child.start()
        print(queue.get(timeout=100))
        child.join()
"""


@pytest.mark.parametrize(
    ("how", "preset", "seen"),
    [("lone", None, "None"), ("worker", None, "1"), ("worker", "0", "0")],
    ids=["lone-process-keeps-libuv-default", "worker-accepts-one-per-wakeup", "operator-setting-wins"],
)
def test_a_web_worker_sharing_the_socket_accepts_one_connection_per_wakeup(tmp_path, how, preset, seen):
    """claudeapp/asgi.py: under `uvicorn --workers N` (a spawned child) libuv's UV_TCP_SINGLE_ACCEPT is on, so
    a burst of connections spreads over the workers (bench/accept_balance.sh measures it); a lone process keeps
    libuv's default; a value the operator set is kept."""
    probe = tmp_path / "probe.py"
    probe.write_text(WORKER_PROBE)
    env = {k: v for k, v in os.environ.items() if k != "UV_TCP_SINGLE_ACCEPT"}
    if preset is not None:
        env["UV_TCP_SINGLE_ACCEPT"] = preset
    started = subprocess.run([sys.executable, str(probe), how], cwd=PROJECT_ROOT, env=env, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip().splitlines()[-1] == seen
