"""GC_THRESHOLD: the web process (claudeapp/asgi.py) sets the cyclic collector's thresholds from it at
startup; empty keeps Python's own; anything but three positive integers stops startup with a message that
names the setting. Each case imports the ASGI module in a process of its own (the thresholds are process-wide)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROBE = "import gc, claudeapp.asgi; print(gc.get_threshold())"


def _start(value: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GC_THRESHOLD"}
    if value is not None:
        env["GC_THRESHOLD"] = value
    return subprocess.run([sys.executable, "-c", PROBE], cwd=PROJECT_ROOT, env=env, capture_output=True,
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
