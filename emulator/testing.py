"""Run the emulator as a subprocess on a free loopback port, for tests and benchmarks.

with EmulatorProcess.start(config={"batch_processing_seconds": 0}) as emu:
    client = anthropic.Anthropic(base_url=emu.url, api_key="test-key")
    emu.reset(); emu.set_config(latency_ms=50); emu.stats(); emu.advance_clock(60)
    emu.charges(request_id="req_..."); emu.wait_for_charge("req_..."); emu.clear_charges()
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from emulator.config import READY_PREFIX

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class EmulatorError(RuntimeError):
    pass


class EmulatorProcess:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, log_path: Path, temp_dir: Path) -> None:
        self.proc = proc
        self.url = url
        self.log_path = log_path
        self._temp_dir = temp_dir
        self._http = httpx.Client(base_url=url, timeout=10.0)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    def start(cls, *args: str, config: dict[str, Any] | None = None, timeout: float = 15.0) -> EmulatorProcess:
        """Start `python -m emulator --port 0 [args]`; `config` is written to a JSON file for --config."""
        temp_dir = Path(tempfile.mkdtemp(prefix="emulator-"))
        command = [sys.executable, "-m", "emulator", "--host", "127.0.0.1", "--port", "0", *args]
        if config:
            (temp_dir / "config.json").write_text(json.dumps(config))
            command += ["--config", str(temp_dir / "config.json")]
        log_path = temp_dir / "emulator.log"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
        }
        with log_path.open("wb") as log:
            proc = subprocess.Popen(  # noqa: S603 - fixed argv: this interpreter running our own module
                command, stdout=subprocess.PIPE, stderr=log, cwd=PROJECT_ROOT, env=env
            )
        url = _read_url(proc, log_path, timeout)
        emulator = cls(proc, url, log_path, temp_dir)
        emulator._wait_healthy(timeout)
        return emulator

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self._http.get("/_emulator/health").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise EmulatorError(f"emulator at {self.url} did not become healthy: {self.log_tail()}")

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, f"/_emulator/{path.lstrip('/')}", json=body)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self.control("POST", "reset")

    def set_config(self, patch: dict[str, Any] | None = None, **values: Any) -> dict[str, Any]:
        return self.control("POST", "config", {**(patch or {}), **values})

    def config(self) -> dict[str, Any]:
        return self.control("GET", "config")

    def stats(self, last: int | None = None) -> dict[str, Any]:
        return self.control("GET", "stats" if last is None else f"stats?last={last}")

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        return self.control("POST", "clock", {"advance_seconds": seconds})

    def charges(
        self,
        request_id: str | None = None,
        message_id: str | None = None,
        *,
        batch_id: str | None = None,
        ending: str | None = None,
    ) -> list[dict[str, Any]]:
        """What the emulator charged (GET /_emulator/ledger), oldest first, filtered by whatever is given."""
        given = {"request_id": request_id, "message_id": message_id, "batch_id": batch_id, "ending": ending}
        response = self._http.get("/_emulator/ledger", params={k: v for k, v in given.items() if v is not None})
        response.raise_for_status()
        return response.json()["charges"]

    def wait_for_charge(self, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The charge of one request, waiting for it if needed.

        Every charge is on the ledger before the end of its response goes out, except when the client
        leaves first (a paced stream it dropped, a `hang`): then the emulator writes it once it notices.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = self.charges(request_id=request_id)
            if found:
                return found[-1]
            if time.monotonic() > deadline:
                raise EmulatorError(f"no charge for {request_id} after {timeout} s")
            time.sleep(0.02)

    def clear_charges(self) -> int:
        """Empty the ledger (DELETE /_emulator/ledger); returns how many charges were dropped."""
        return self.control("DELETE", "ledger")["cleared"]

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 5.0) -> None:
        self._http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        shutil.rmtree(self._temp_dir, ignore_errors=True)

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _read_url(proc: subprocess.Popen[bytes], log_path: Path, timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline().decode().strip() if ready else ""
    if not line.startswith(READY_PREFIX):
        proc.kill()
        proc.wait()
        raise EmulatorError(f"emulator failed to start: {line!r} {log_path.read_text(errors='replace')[-2000:]}")
    return line.split()[1]
