"""Real processes, real faults: the one home of the fault suite (tests/chaos) and the figures
(scripts/reliability.py, docs/reliability.md).

A `Cluster` is the whole product on this machine, on services of its own so that a fault never
touches the machine's shared Postgres, Redis or RabbitMQ:

- a private Postgres cluster (initdb in a temp dir, pg_ctl on a free port) that can be stopped and
  started again (`PrivatePostgres`);
- two private redis-servers, one for the cache/limits/breakers (`REDIS_URL`) and one as the Celery
  broker (or an `amqp://` URL: RabbitMQ), each stoppable (`PrivateRedis`);
- the emulator as upstream (its charge ledger is what the gateway's ledger is checked against);
- N uvicorn web processes, M Celery workers and exactly one beat (the sweeper runs every second).

Each fault is a function `cell_*(cluster, ...) -> CellResult` that drives load through the web
processes (partner API calls over HTTP, jobs through POST /api/v1/jobs), injects the fault, waits for
recovery and counts: sent, completed, lost, double billed, recovery time. The tests assert on the
result; the script prints it as a table. Ledger checks are plain SQL against the private database.

Processes are started and killed by pid (SIGKILL for a crash). Nothing here imports pytest.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

PROJECT_ROOT = Path(__file__).resolve().parents[2]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from emulator.testing import EmulatorProcess  # noqa: E402
from tests.fixtures.contents import user_content, with_content  # noqa: E402
from tests.fixtures.live_web import WEB_ENV, WebServer  # noqa: E402

MODEL = "claude-haiku-5-5"  # no fallback in the seeded map: an injected fault is the call's own
KEY_PREFIX = "chaos"
# Short on purpose, shared by every process of a cluster: a dead worker's lease runs out in 4 s and the
# beat sweeps every second; a stopped Postgres is answered 503 after 2 s instead of 10; an open circuit
# probes again after 2 s; a hung upstream call is given up after 3 s.
CLUSTER_ENV: dict[str, str] = {
    **WEB_ENV,
    "LOG_FORMAT": "json",
    "CACHE_KEY_PREFIX": KEY_PREFIX,
    "JOBS_LEASE_SECONDS": "4",
    "JOBS_SWEEP_INTERVAL_SECONDS": "1",
    "JOBS_QUEUED_STALE_SECONDS": "3",
    "JOBS_MAX_ATTEMPTS": "8",
    "JOBS_RETRY_BASE_SECONDS": "0.3",
    "JOBS_RETRY_MAX_SECONDS": "2",
    "JOBS_CALL_TIMEOUT_SECONDS": "6",
    "CLAUDE_MAX_ATTEMPTS": "2",
    "CLAUDE_BREAKER_FAILURE_THRESHOLD": "5",
    "CLAUDE_BREAKER_COOLDOWN_SECONDS": "2",
    "ANTHROPIC_TIMEOUT_SECONDS": "3",
    "DB_POOL_TIMEOUT": "2",
    "DB_POOL_MAX_SIZE": "8",
    "CELERY_WORKER_CONCURRENCY": "8",
    "CELERY_SKIP_CHECKS": "1",
    "UPSTREAM_MAX_WAIT_SECONDS": "1",
    # A killed process's calls in flight: its heartbeat lapses after 3 s, the reaper looks every second.
    "CALLS_HEARTBEAT_TTL_SECONDS": "3",
    "CALLS_HEARTBEAT_SECONDS": "1",
    "CALLS_REAPER_INTERVAL_SECONDS": "1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.1) -> float:
    """Poll until `predicate()` is true; returns the seconds it took. Raises TimeoutError naming `what`."""
    start = time.monotonic()
    while True:
        with contextlib.suppress(Exception):
            if predicate():
                return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# --- private services ------------------------------------------------------------------------


def _postgres_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if found:
        return str(found[-1])
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise RuntimeError(f"{name} not found (Debian: /usr/lib/postgresql/*/bin; apt-get install postgresql)")


class PrivatePostgres:
    """A throwaway Postgres cluster on a free port; stop()/start() keep its data (a restart)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="chaos-pg-"))
        self.port = free_port()
        self.data = self.dir / "data"
        self._as_postgres = os.geteuid() == 0  # Postgres refuses to run as root
        if self._as_postgres:
            shutil.chown(self.dir, "postgres")
        self._run(_postgres_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync",
                  "-E", "UTF8")  # fmt: skip
        self.start()

    def _run(self, *argv: str) -> None:
        command = ["runuser", "-u", "postgres", "--", *argv] if self._as_postgres else list(argv)
        subprocess.run(command, check=True, capture_output=True, cwd=self.dir)

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")  # fmt: skip
        self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-o", options,
                  "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """`fast`: every session is ended (what a restart does); `immediate`: a crash."""
        self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)]).returncode == 0

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            if self.running():
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """A redis-server on a free port, nothing kept on disk (like the machine's); stop()/start() = a restart."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="chaos-redis-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
                "--dir", str(self.dir)]  # fmt: skip
        with (self.dir / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log)
        wait_until(self.running, timeout=10, what=f"redis-server on {self.port}")

    def running(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """SIGKILL: the server goes away at once and, with nothing saved, comes back empty."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def rabbitmq_url(vhost: str) -> str | None:
    """An amqp:// URL for a vhost of our own on the machine's RabbitMQ (created if missing), or None when
    RabbitMQ does not answer on 127.0.0.1:5672. Never touches another vhost's queues."""
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError:
        return None
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    listed = subprocess.run([ctl, "-q", "list_vhosts"], capture_output=True, text=True, timeout=60)
    if vhost not in listed.stdout.split():
        subprocess.run([ctl, "-q", "add_vhost", vhost], capture_output=True, timeout=60, check=True)
        subprocess.run([ctl, "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
                       capture_output=True, timeout=60, check=True)  # fmt: skip
    return f"amqp://guest:guest@127.0.0.1:5672/{vhost}"


# --- product processes -----------------------------------------------------------------------


class Web(WebServer):
    """tests/fixtures/live_web.py's uvicorn process, given longer to start: a cluster starts several
    Django processes at once on two cores."""

    def _wait_ready(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"uvicorn did not start:\n{self.log()}")


class CeleryProcess:
    """`celery -A claudeapp worker|beat` in its own session; kill() is a SIGKILL (a crash)."""

    def __init__(self, kind: str, env: dict[str, str], log_dir: Path, *, name: str = "") -> None:
        self.kind = kind
        self.name = name or f"{kind}-{uuid.uuid4().hex[:6]}"
        self.log_path = log_dir / f"{self.name}.log"
        if kind == "worker":
            argv = ["worker", "--pool", "threads", "-Q", "interactive,bulk", "-n", f"{self.name}@%h",
                    "--without-gossip", "--without-mingle", "--loglevel", "INFO"]  # fmt: skip
            self._ready = "ready."
        else:
            argv = ["beat", "--loglevel", "INFO", "-s", str(log_dir / f"{self.name}-schedule")]
            self._ready = "beat: Starting"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "claudeapp", *argv],
                cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        self._wait_ready()

    def _wait_ready(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if self._ready in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"celery {self.kind} did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Keys:
    """Partner keys made by `prepare_database`: `main` has no limits; `limited` a requests-per-minute policy.
    `person`/`password`: the keys' owner, who signs in to the chat."""

    main: str
    limited: str
    limited_id: int
    limited_rpm: int
    person: str = ""
    password: str = ""


def prepare_database(*, migrate: bool, limited_rpm: int = 5) -> dict[str, Any]:
    """Run inside a Django process whose default database is the cluster's: migrate (when asked), seed,
    and make the partner keys the cells call with. Returns what `Keys` holds."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from billing.models import RateLimitPolicy
    from claudeapp.api import keys

    if migrate:
        call_command("migrate", verbosity=0)
    call_command("seed", verbosity=0)
    user_model = get_user_model()
    owner, _ = user_model.objects.get_or_create(username=f"chaos-{uuid.uuid4().hex[:6]}")
    password = uuid.uuid4().hex
    owner.set_password(password)
    owner.save(update_fields=["password"])
    scopes = ["messages", "jobs"]
    _, main_raw = keys.create_key(owner=owner, name="chaos main", scopes=[*scopes, "conversations"])
    limited, limited_raw = keys.create_key(owner=owner, name="chaos limited", scopes=scopes)
    RateLimitPolicy.objects.create(scope="partner_key", scope_id=limited.pk, requests_per_minute=limited_rpm)
    return {"main": main_raw, "limited": limited_raw, "limited_id": limited.pk, "limited_rpm": limited_rpm,
            "person": owner.username, "password": password}  # fmt: skip


class Cluster:
    """The product on private services: see the module docstring. Use as a context manager."""

    def __init__(
        self,
        *,
        webs: int = 2,
        workers: int = 2,
        beat: bool = True,
        broker: str = "redis",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.log_dir = Path(tempfile.mkdtemp(prefix="chaos-cluster-"))
        self.webs: list[Web] = []
        self.workers: list[CeleryProcess] = []
        self.beat: CeleryProcess | None = None
        self.redis: PrivateRedis | None = None
        self.broker_redis: PrivateRedis | None = None
        self.emulator: EmulatorProcess | None = None
        self._http = httpx.Client(timeout=30.0)
        self._spares: dict[tuple[tuple[str, str], ...], Future[Web]] = {}  # see victim_web()
        self._spare_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spare-web")
        self.pg = PrivatePostgres()
        try:
            self._start(webs=webs, workers=workers, beat=beat, broker=broker, extra_env=extra_env or {})
        except BaseException:
            self.close()
            raise

    def _start(self, *, webs: int, workers: int, beat: bool, broker: str, extra_env: dict[str, str]) -> None:
        self.redis = PrivateRedis()
        self.broker_redis = PrivateRedis() if broker == "redis" else None
        self.broker_url = self.broker_redis.url() if self.broker_redis else broker
        self.database_url = self.pg.create_database("gateway")
        self.emulator = EmulatorProcess.start()
        metrics_dir = self.log_dir / "prometheus"
        metrics_dir.mkdir()
        self.env: dict[str, str] = {
            **os.environ,
            **CLUSTER_ENV,
            "DJANGO_SETTINGS_MODULE": "claudeapp.settings",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis.url(),
            "CELERY_BROKER_URL": self.broker_url,
            "ANTHROPIC_BASE_URL": self.emulator.url,
            "ANTHROPIC_API_KEY": "",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            **extra_env,
        }
        self.keys = self._prepare()
        # Started side by side: each is a Django start-up of several seconds of CPU.
        with ThreadPoolExecutor(max_workers=webs + workers + 1) as pool:
            web_jobs = [pool.submit(Web, self.env) for _ in range(webs)]
            worker_jobs = [pool.submit(self.spawn_worker) for _ in range(workers)]
            beat_job = pool.submit(CeleryProcess, "beat", self.env, self.log_dir) if beat else None
            failures: list[BaseException] = []
            for job in [*web_jobs, *worker_jobs, *([beat_job] if beat_job else [])]:
                try:
                    started = job.result()
                except Exception as exc:  # collect all, so the ones that did start are stopped in close()
                    failures.append(exc)
                    continue
                if isinstance(started, Web):
                    self.webs.append(started)
                elif job is beat_job:
                    self.beat = started
                else:
                    self.workers.append(started)
        if failures:
            raise failures[0]

    def _prepare(self) -> Keys:
        script = ("import json, sys; from tests.chaos.harness import prepare_database; "
                  "print('KEYS ' + json.dumps(prepare_database(migrate=True)))")  # fmt: skip
        done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=self.env, capture_output=True,
                              text=True, timeout=600)  # fmt: skip
        lines = [line for line in done.stdout.splitlines() if line.startswith("KEYS ")]
        if done.returncode or not lines:
            raise RuntimeError(
                f"preparing the cluster's database failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
            )
        return Keys(**json.loads(lines[-1][5:]))

    # processes

    def spawn_worker(self, **env: str) -> CeleryProcess:
        return CeleryProcess("worker", {**self.env, **env}, self.log_dir)

    def spawn_web(self, **env: str) -> Web:
        return Web({**self.env, **env})

    def victim_web(self, **env: str) -> Web:
        """A web process of its own for a cell to kill, as spawn_web(**env) gives. The next one with the
        same `env` is started in the background now, while this one's cell runs (mostly waiting on the
        reaper), so the next such cell does not wait the ~2 s of a Django start-up for its victim."""
        key = tuple(sorted(env.items()))
        spare = self._spares.pop(key, None)
        web = None
        if spare is not None:
            with contextlib.suppress(Exception):  # it failed to start: start one now, the error shows then
                web = spare.result()
        if web is None or web.proc.poll() is not None:
            web = self.spawn_web(**env)
        self._spares[key] = self._spare_pool.submit(self.spawn_web, **env)
        return web

    def kill_web(self, index: int) -> None:
        """SIGKILL one web process (a crash mid-request); restart_web() brings a new one in its slot."""
        proc = self.webs[index].proc
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def restart_web(self, index: int) -> Web:
        self.kill_web(index)
        self.webs[index] = Web(self.env)
        return self.webs[index]

    def restart_worker(self, index: int) -> CeleryProcess:
        self.workers[index].kill()
        self.workers[index] = self.spawn_worker()
        return self.workers[index]

    def ensure_workers(self) -> None:
        for index, worker in enumerate(self.workers):
            if not worker.alive():
                self.workers[index] = self.spawn_worker()

    def close(self) -> None:
        self._http.close()
        self._spare_pool.shutdown(wait=True)
        for spare in self._spares.values():
            with contextlib.suppress(Exception):
                spare.result().stop()
        for proc in [*self.workers, *([self.beat] if self.beat else [])]:
            proc.stop()
        for web in self.webs:
            web.stop()
        if self.emulator is not None:
            self.emulator.stop()
        for service in (self.redis, self.broker_redis):
            if service is not None:
                service.destroy()
        self.pg.destroy()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # traffic

    def call(self, text: str, *, web: int = 0, key: str | None = None, timeout: float = 30.0, url: str = "") -> Call:
        """One POST /api/v1/messages (to web process `web`, or to `url`); a connection error or timeout is
        recorded as status 0 (no answer)."""
        body = {"model": MODEL, "max_tokens": 32, "messages": [{"role": "user", "content": _nonce(text)}]}
        headers = {"Authorization": f"Bearer {key or self.keys.main}"}
        started = time.monotonic()
        try:
            response = self._http.post(f"{url or self.webs[web].url}/api/v1/messages", json=body, headers=headers,
                                       timeout=timeout)  # fmt: skip
        except httpx.HTTPError as exc:
            return Call(status=0, error=type(exc).__name__, seconds=time.monotonic() - started)
        error = "" if response.status_code == 200 else response.text[:300]
        return Call(status=response.status_code, error=error, seconds=time.monotonic() - started)

    def submit_job(self, text: str, *, web: int = 0, url: str = "") -> str | None:
        """POST /api/v1/jobs (to web process `web`, or to `url`); the job id, or None when the gateway
        did not take it (the caller retries)."""
        body = {"model": MODEL, "max_tokens": 32, "messages": [{"role": "user", "content": _nonce(text)}]}
        try:
            response = self._http.post(f"{url or self.webs[web].url}/api/v1/jobs", json=body,
                                       headers={"Authorization": f"Bearer {self.keys.main}"})  # fmt: skip
        except httpx.HTTPError:
            return None
        return response.json()["id"] if response.status_code == 202 else None

    def submit_jobs(self, count: int, text: str, *, timeout: float = 60.0) -> list[str]:
        """Submit `count` jobs across the web processes, retrying refused submissions (as a client would)."""
        ids: list[str] = []
        deadline = time.monotonic() + timeout
        while len(ids) < count:
            job_id = self.submit_job(text, web=len(ids) % len(self.webs))
            if job_id:
                ids.append(job_id)
            elif time.monotonic() > deadline:
                raise TimeoutError(f"only {len(ids)} of {count} jobs were accepted")
            else:
                time.sleep(0.2)
        return ids

    def readyz(self, web: int = 0) -> tuple[int, dict[str, Any]]:
        return self.readyz_url(self.webs[web].url)

    def readyz_url(self, url: str) -> tuple[int, dict[str, Any]]:
        try:
            response = self._http.get(f"{url}/readyz", timeout=10)
            return response.status_code, response.json()
        except (httpx.HTTPError, ValueError) as exc:
            return 0, {"error": type(exc).__name__}

    # the database, read directly

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as conn:
            return conn.execute(query, params).fetchall()

    def job_statuses(self, ids: list[str]) -> Counter[str]:
        rows = self.sql("SELECT status FROM jobs_job WHERE id = ANY(%s::uuid[])", ids)
        return Counter(status for (status,) in rows)

    def wait_jobs(self, ids: list[str], *, timeout: float) -> float:
        """Seconds until every job succeeded (TimeoutError naming the statuses otherwise)."""
        try:
            return wait_until(lambda: self.job_statuses(ids).get("succeeded", 0) == len(ids), timeout=timeout,
                              what="jobs to succeed", interval=0.25)  # fmt: skip
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}: {dict(self.job_statuses(ids))}") from None

    def mark(self) -> Mark:
        """Where the ledger and the emulator's charges stand now: billing(since=mark) looks only after it."""
        ((last_id, now),) = self.sql("SELECT coalesce(max(id), 0), now() FROM billing_ledgerentry")
        return Mark(ledger_id=last_id, charges=len(self.emulator.charges()), at=now)

    def billing(self, *, since: Mark) -> Billing:
        """The gateway's ledger against the emulator's charges, both after `since`."""
        charges = [c for c in self.emulator.charges()[since.charges :] if not c["batch"]]
        rows = self.sql(
            "SELECT upstream_request_id, kind, subject FROM billing_ledgerentry WHERE id > %s", since.ledger_id
        )
        # Calls whose process died before any answer came back, billed by the in-flight reaper
        # (claudeapp/calls/inflight.py): upstream's request id never reached us, so they are counted.
        ((blind,),) = self.sql(
            "SELECT count(*) FROM billing_ledgerentry WHERE id > %s AND event_key LIKE 'interrupted:%%' "
            "AND upstream_request_id = ''",
            since.ledger_id,
        )
        attempts = dict(self.sql("SELECT id::text, attempts FROM jobs_job WHERE created_at >= %s", since.at))
        return Billing(charges=charges, rows=rows, reaped_blind=blind, job_attempts=attempts)


@dataclass(frozen=True)
class Mark:
    ledger_id: int
    charges: int
    at: Any = None  # the database's clock then


@dataclass
class Call:
    status: int  # 0: no answer at all
    error: str = ""
    seconds: float = 0.0


@dataclass
class Billing:
    charges: list[dict[str, Any]]
    rows: list[tuple[Any, ...]]  # (upstream_request_id, kind, subject)
    reaped_blind: int = 0  # rows of killed calls whose upstream request id was never seen
    job_attempts: dict[str, int] = field(default_factory=dict)  # each job's upstream calls (one per attempt)

    def _billable(self) -> set[str]:
        return {c["request_id"] for c in self.charges if any(c["usage"].get(k) for k in c["usage"])}

    @property
    def double_billed(self) -> int:
        """Upstream calls with more than one ledger row, plus jobs billed more often than they called
        upstream (each attempt is one upstream call: a killed attempt and its re-run are two bills)."""
        by_request = Counter(rid for rid, _, _ in self.rows if rid)
        by_job = Counter(subject for _, kind, subject in self.rows if kind == "job" and subject)
        over = sum(1 for job, n in by_job.items() if n > max(self.job_attempts.get(job, 1), 1))
        return sum(1 for n in by_request.values() if n > 1) + over

    @property
    def unbilled(self) -> int:
        """Upstream charges with usage and no ledger row (e.g. an attempt whose process was killed),
        less the reaper's rows for calls killed before their answer named them."""
        billed = {rid for rid, _, _ in self.rows if rid}
        return max(0, len(self._billable() - billed) - self.reaped_blind)

    @property
    def phantom(self) -> int:
        """Ledger rows naming an upstream request the emulator never charged."""
        charged = {c["request_id"] for c in self.charges}
        return sum(1 for rid, kind, _ in self.rows if rid and kind in ("message", "job") and rid not in charged)


@dataclass
class CellResult:
    fault: str
    load: str
    calls_sent: int = 0
    jobs_sent: int = 0
    completed: int = 0
    refused: int = 0  # answered with an error status (429, 503, 529...): not lost, the client knows
    lost: int = 0  # no answer at all, a 500, or a job that never finished
    double_billed: int = 0
    unbilled: int = 0
    recovery_seconds: float | None = None
    statuses: Counter[int] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # a cell's own figures, for its test

    def row(self) -> list[str]:
        recovery = "-" if self.recovery_seconds is None else f"{self.recovery_seconds:.1f} s"
        return [self.fault, self.load, str(self.calls_sent), str(self.jobs_sent), str(self.completed),
                str(self.refused), str(self.lost), str(self.double_billed), recovery]  # fmt: skip


def _nonce(text: str) -> str:
    return f"{text} (nonce {uuid.uuid4().hex[:10]})"


class Load:
    """Calls at a steady pace from `threads` threads until stop(); every answer is kept."""

    def __init__(self, cluster: Cluster, *, threads: int = 3, pause: float = 0.2, text: str = "steady") -> None:
        self.cluster, self.pause, self.text = cluster, pause, text
        self.calls: list[tuple[float, Call]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def _run(self, index: int) -> None:
        while not self._stop.is_set():
            call = self.cluster.call(self.text, web=index % len(self.cluster.webs), timeout=20)
            with self._lock:
                self.calls.append((time.monotonic(), call))
            self._stop.wait(self.pause)

    def stop(self) -> list[tuple[float, Call]]:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)
        return self.calls

    def first_ok_after(self, moment: float, *, timeout: float = 60.0) -> float:
        """Seconds from `moment` (monotonic) to the first call answered 200 that ended after it."""

        def found() -> bool:
            with self._lock:
                return any(t >= moment and c.status == 200 for t, c in self.calls)

        wait_until(found, timeout=timeout, what="a call answered 200", interval=0.1)
        with self._lock:
            return min(t for t, c in self.calls if t >= moment and c.status == 200) - moment


def _tally(result: CellResult, calls: list[Call], *, refusals: set[int]) -> None:
    for call in calls:
        result.statuses[call.status] += 1
        if call.status == 200:
            result.completed += 1
        elif call.status in refusals:
            result.refused += 1
        else:
            result.lost += 1
            if len(result.notes) < 5:
                result.notes.append(f"call answered {call.status}: {call.error[:160]}")
    result.calls_sent += len(calls)


def _bill(result: CellResult, cluster: Cluster, since: Mark) -> Billing:
    billing = cluster.billing(since=since)
    result.double_billed = billing.double_billed
    result.unbilled = billing.unbilled
    if billing.phantom:
        result.notes.append(f"{billing.phantom} ledger row(s) name no upstream charge")
    return billing


# --- the cells ---------------------------------------------------------------------------------


def cell_worker_kill(cluster: Cluster, *, jobs: int = 12, latency_ms: int = 2500) -> CellResult:
    """kill -9 of a worker with jobs in flight: every job re-runs on the other worker within the lease."""
    result = CellResult("worker kill -9 mid-run", f"{jobs} jobs, {latency_ms / 1000:g} s upstream latency")
    since = cluster.mark()
    ids = cluster.submit_jobs(jobs, f"[[latency:{latency_ms}]] slow job")
    result.jobs_sent = jobs
    wait_until(lambda: cluster.job_statuses(ids).get("running", 0) >= min(jobs, 4), timeout=60, what="jobs running")
    victim = cluster.workers[0]
    victim.kill()
    killed_at = time.monotonic()
    try:
        cluster.wait_jobs(ids, timeout=90)
        result.recovery_seconds = time.monotonic() - killed_at
    except TimeoutError as exc:
        result.notes.append(str(exc))
    statuses = cluster.job_statuses(ids)
    result.completed = statuses.get("succeeded", 0)
    result.lost = jobs - result.completed
    result.notes.append(f"attempts per job: {dict(Counter(a for (a,) in cluster.sql(_ATTEMPTS, ids)))}")
    # The killed attempts were charged upstream too: the in-flight reaper bills them once their
    # worker's heartbeat has lapsed (CALLS_HEARTBEAT_TTL_SECONDS, then one reaper beat).
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: cluster.billing(since=since).unbilled == 0, timeout=20, what="the killed attempts billed")
    ((reaped,),) = cluster.sql(
        "SELECT count(*) FROM billing_ledgerentry WHERE id > %s AND event_key LIKE 'interrupted:%%'", since.ledger_id
    )
    result.notes.append(f"killed attempts billed by the in-flight reaper: {reaped}")
    _bill(result, cluster, since)
    cluster.restart_worker(0)
    return result


_ATTEMPTS = "SELECT attempts FROM jobs_job WHERE id = ANY(%s::uuid[])"

STREAM_SURFACES = ("anthropic", "api")  # the stateless surfaces: one call, streamed or not
TURN_SURFACES = ("api_conversation", "chat")  # a turn of a conversation: its answer is a saved message
_PATHS = {"anthropic": "/anthropic/v1/messages", "api": "/api/v1/messages",
          "api_conversation": "/api/v1/messages, a conversation's turn", "chat": "/c/<id>/send"}  # fmt: skip
# A long answer at a slow pace: 240 words, 3 a chunk, one chunk every 80 ms (about 6.5 s of stream).
_SLOW_STREAM = "[[words:240]] [[chunk-ms:80]] a long story"
_MAX_TOKENS = 1024
# A non-streamed answer that upstream sends after 6 s, and charges then whoever is left to read it. The
# process to be killed waits for upstream longer than that (the cluster's 3 s would retry it first).
_SLOW_REPLY = "[[latency:6000]] a slow answer"
_SLOW_REPLY_ENV = {"ANTHROPIC_TIMEOUT_SECONDS": "30"}


@dataclass
class _Target:
    """One call: httpx's arguments for it, and the conversation it is a turn of (turn surfaces)."""

    url: str
    request: dict[str, Any]
    conversation: str = ""


def _targets(
    cluster: Cluster, surface: str, url: str, *, streamed: bool, calls: int, content: str = "text"
) -> list[_Target]:
    """`calls` calls to the web process at `url`. A turn's conversation is made beforehand on web process
    0, so that only the turns run on the process to be killed. `content` (the stateless surfaces): what the
    calls carry besides text (tests/fixtures/contents.py: document, image, tools, thinking)."""
    text = _SLOW_STREAM if streamed else _SLOW_REPLY
    bearer = {"Authorization": f"Bearer {cluster.keys.main}"}
    if surface in STREAM_SURFACES:
        headers = (
            {"x-api-key": cluster.keys.main, "anthropic-version": "2023-06-01"} if surface == "anthropic" else bearer
        )
        body = {"model": MODEL, "max_tokens": _MAX_TOKENS, "stream": streamed}

        def messages() -> list[dict[str, Any]]:
            return _user(text) if content == "text" else [{"role": "user", "content": user_content(content, text)}]

        return [
            _Target(
                f"{url}{_PATHS[surface]}",
                {"json": with_content({**body, "messages": messages()}, content), "headers": headers},
            )
            for _ in range(calls)
        ]
    assert content == "text", f"{surface} calls carry text only here"
    targets = []
    if surface == "api_conversation":
        for _ in range(calls):
            created = cluster._http.post(f"{cluster.webs[0].url}/api/v1/conversations", json={"title": "killed"},
                                         headers=bearer)  # fmt: skip
            created.raise_for_status()
            body = {"conversation_id": created.json()["id"], "content": _nonce(text), "model": MODEL,
                    "max_tokens": _MAX_TOKENS, "stream": streamed}  # fmt: skip
            targets.append(
                _Target(f"{url}/api/v1/messages", {"json": body, "headers": bearer}, body["conversation_id"])
            )
        return targets
    assert surface == "chat" and streamed, f"no such call: {surface} (streamed: {streamed})"
    browser = _signed_in(cluster)  # the chat's own form posts, as its page sends them
    for _ in range(calls):
        created = httpx.post(f"{cluster.webs[0].url}/c/new", data={"model": MODEL},
                             headers={**browser, "accept": "application/json"}, timeout=30)  # fmt: skip
        created.raise_for_status()
        send = created.json()["send_url"]  # /c/<conversation>/send
        form = {"content": _nonce(text), "model": MODEL}
        targets.append(_Target(f"{url}{send}", {"data": form, "headers": browser}, send.split("/")[2]))
    return targets


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": _nonce(text)}]


def _signed_in(cluster: Cluster) -> dict[str, str]:
    """The headers of a browser signed in as the keys' owner (the login form, on web process 0): its
    session cookie, and its CSRF token sent back in a header as the chat page's script does."""
    web = cluster.webs[0].url
    token = uuid.uuid4().hex  # a CSRF secret of the cookie's length
    login = httpx.post(
        f"{web}/accounts/login/", data={"username": cluster.keys.person, "password": cluster.keys.password},
        headers={"cookie": f"csrftoken={token}", "x-csrftoken": token, "referer": f"{web}/"}, timeout=30,
    )  # fmt: skip
    session, csrf = login.cookies.get("sessionid"), login.cookies.get("csrftoken") or token  # login rotates it
    if login.status_code != 302 or not session:
        raise RuntimeError(f"the chat login failed: {login.status_code} {login.text[:300]}")
    return {"cookie": f"sessionid={session}; csrftoken={csrf}", "x-csrftoken": csrf, "referer": f"{web}/"}


@dataclass
class _Reader:
    """One call read in a thread: how many SSE events and how much text reached the client."""

    events: int = 0
    text: str = ""
    error: str = ""
    done: bool = False


def _read_call(target: _Target, reader: _Reader) -> None:
    try:
        with httpx.stream("POST", target.url, timeout=30, **target.request) as response:
            if response.status_code != 200:
                reader.error = f"{response.status_code}: {response.read()[:200]!r}"
                return
            for line in response.iter_lines():  # a JSON answer has no `data:` line
                if not line.startswith("data:"):
                    continue
                reader.events += 1
                with contextlib.suppress(ValueError):
                    data = json.loads(line[5:])
                    delta = data.get("delta") if isinstance(data, dict) else None
                    text = (delta or {}).get("text") if isinstance(delta, dict) else data.get("text")
                    reader.text += text or ""
        reader.done = True
    except httpx.HTTPError as exc:
        reader.error = type(exc).__name__


def _budget(cluster: Cluster) -> int:
    """A roomy global budget, so every call holds money the reaper must settle (made once per cluster)."""
    found = cluster.sql("SELECT id FROM billing_budget WHERE scope = 'global' AND scope_id IS NULL")
    if found:
        return found[0][0]
    ((pk,),) = cluster.sql(
        "INSERT INTO billing_budget (scope, scope_id, period, limit_micros, spent_micros, reserved_micros, "
        "period_start, alert_thresholds, alert_webhook_url, enabled, created_at, updated_at) "
        "VALUES ('global', NULL, 'month', %s, 0, 0, date_trunc('month', now()), '', '', true, now(), now()) "
        "RETURNING id",
        10**13,
    )
    return pk


_ANSWERS = ("SELECT m.status, m.output_tokens, m.cost_micros FROM conversations_message m JOIN "
            "conversations_conversation c ON c.id = m.conversation_id "
            "WHERE c.public_id = ANY(%s::uuid[]) AND m.role = 'assistant'")  # fmt: skip
UNFINISHED = ("pending", "streaming")  # an answer's statuses while its process is writing it


def cell_web_kill_mid_call(cluster: Cluster, surface: str = "anthropic", *, streamed: bool = True,
                           calls: int = 4, content: str = "text") -> CellResult:  # fmt: skip
    """kill -9 of a web process with `calls` calls half-way through (`surface`: STREAM_SURFACES or
    TURN_SURFACES): each is billed exactly once by the in-flight reaper, the budget holds are gone, and a
    turn's saved answer is left in a final state. A stream is billed its exact input and the output
    delivered at its last checkpoint; a non-streamed call that never got its answer is billed at its bound
    (input bound + max_tokens), which covers whatever upstream charged for it. `content` (the stateless
    surfaces): what the calls carry (tests/fixtures/contents.py)."""
    load = f"{calls} streams of ~6.5 s, killed after ~3 s" if streamed else f"{calls} calls answered after 6 s"
    kind = "" if content == "text" else f", {content}"
    result = CellResult(f"web kill -9 mid-{'stream' if streamed else 'call'} ({_PATHS[surface]}{kind})", load)
    budget = _budget(cluster)
    # A process of its own (the other cells' web processes are not touched), warmed by one call so that
    # the calls below are all under way at once.
    victim = cluster.victim_web(**({} if streamed else _SLOW_REPLY_ENV))
    cluster.call("warm-up", url=victim.url)
    targets = _targets(cluster, surface, victim.url, streamed=streamed, calls=calls, content=content)
    since = cluster.mark()
    readers = [_Reader() for _ in targets]
    threads = [
        threading.Thread(target=_read_call, args=(t, r), daemon=True) for t, r in zip(targets, readers, strict=True)
    ]
    for thread in threads:
        thread.start()

    def under_way() -> bool:
        if streamed:  # about 3 s in (a chunk every 80 ms): past two output checkpoints (1 s apart)
            return all(r.events >= 40 for r in readers)
        return cluster.sql("SELECT count(*) FROM billing_reservation")[0][0] >= calls  # every call admitted

    try:
        wait_until(under_way, timeout=60, what="every call under way")
        if not streamed:
            time.sleep(1.0)  # from admission to upstream is milliseconds; upstream answers 6 s later
    finally:
        victim.proc.kill()
        victim.proc.wait(10)
    killed_at = time.monotonic()
    for thread in threads:
        thread.join(30)
    result.calls_sent = calls

    def charged() -> list[dict[str, Any]]:  # a stream is charged once the emulator notices its reader gone
        return [c for c in cluster.emulator.charges()[since.charges :] if not c["batch"]]

    def billed() -> list[tuple[Any, ...]]:
        # A stream's row names its upstream request (message_start's); a call killed before its answer named
        # it is billed blind, under its in-flight record's own key.
        return cluster.sql(
            "SELECT upstream_request_id, input_tokens, output_tokens, event_key FROM billing_ledgerentry "
            "WHERE id > %s AND (upstream_request_id = ANY(%s) OR "
            "(upstream_request_id = '' AND event_key LIKE 'interrupted:%%'))",
            since.ledger_id, [c["request_id"] for c in charged()],
        )  # fmt: skip

    try:
        wait_until(lambda: len(charged()) >= calls and len(billed()) >= calls, timeout=60,
                   what="the killed calls to be billed", interval=0.25)  # fmt: skip
        result.recovery_seconds = time.monotonic() - killed_at
    except TimeoutError as exc:
        result.notes.append(f"{exc}: {len(charged())} charges, {len(billed())} rows")
    charges, rows = charged(), billed()
    # Every call was cut by the kill (the client saw its connection drop): "completed" is a cut call
    # billed for what it used upstream, "lost" one the ledger never got.
    result.completed = min(len(rows), calls)
    result.lost = max(calls - len(rows), 0)
    cut = sum(1 for r in readers if r.error and not r.done)
    if cut != calls:
        result.notes.append(f"only {cut} of {calls} calls were cut by the kill: {[r.error for r in readers]}")
    _bill(result, cluster, since)
    held = cluster.sql("SELECT count(*) FROM billing_reservation")[0][0]
    ((reserved,),) = cluster.sql("SELECT reserved_micros FROM billing_budget WHERE id = %s", budget)
    named = {row[0]: row for row in rows if row[0]}
    blind = [row for row in rows if not row[0]]
    unnamed = [c["usage"] for c in charges if c["request_id"] not in named]
    # message_start's input on each row that names its charge (None: no row does, all were billed blind)
    exact_input = (
        all(named[c["request_id"]][1] == c["usage"]["input_tokens"] for c in charges if c["request_id"] in named)
        if named
        else None
    )
    # A blind row is not tied to one charge: each must cover any of the charges no row names.
    covered = not unnamed or (
        len(blind) >= len(unnamed)
        and min(row[1] for row in blind) >= max(u["input_tokens"] for u in unnamed)
        and min(row[2] for row in blind) >= max(u["output_tokens"] for u in unnamed)
    )
    upstream = (sum(c["usage"]["input_tokens"] for c in charges), sum(c["usage"]["output_tokens"] for c in charges))
    ledger = (sum(row[1] for row in rows), sum(row[2] for row in rows))
    seen = sum(-(-len(r.text.encode()) // 3) for r in readers)
    result.notes.append(
        f"tokens in/out: billed {ledger[0]}/{ledger[1]}, upstream charged {upstream[0]}/{upstream[1]}, text the "
        f"clients saw ~{seen} out (bytes/3); rows naming their upstream request {len(named)}, billed blind at the "
        f"bound {len(blind)}; input billed exactly as charged: {exact_input}; blind rows cover the charges: "
        f"{covered}; holds left {held}, reserved {reserved}"
    )  # fmt: skip
    result.extra = {"exact_input": exact_input, "covered": covered, "held": held, "reserved": reserved,
                    "ledger_out": ledger[1], "upstream_out": upstream[1], "rows": len(rows), "charges": len(charges),
                    "blind": len(blind), "event_keys": len({row[3] for row in rows}),
                    "max_tokens": targets[0].request.get("json", {}).get("max_tokens")}  # fmt: skip
    if surface in TURN_SURFACES:
        result.extra["answers"] = _answers_after_reaping(cluster, result, [t.conversation for t in targets])
    return result


def _answers_after_reaping(cluster: Cluster, result: CellResult, conversations: list[str]) -> list[tuple[Any, ...]]:
    """The killed turns' saved answers (status, output tokens, cost), given a moment past their billing
    to be repaired (the reaper bills, then hands each answer to conversations/interrupted.py)."""

    def answers() -> list[tuple[Any, ...]]:
        return cluster.sql(_ANSWERS, conversations)

    with contextlib.suppress(TimeoutError):
        wait_until(lambda: not any(a[0] in UNFINISHED for a in answers()), timeout=3, what="the answers repaired")
    found = answers()
    result.notes.append(f"the killed turns' answers (status, output tokens, cost): {sorted(found)}")
    return found


def cell_web_kill_answered_unsettled(cluster: Cluster, *, calls: int = 4, content: str = "text") -> CellResult:
    """kill -9 of a web process whose non-streamed /anthropic calls were answered (the reply goes out before
    its bill, docs/reliability.md) while their settlements wait together in one batch, held back by a lock
    another transaction holds on the budget row they settle against: each is billed exactly once, at
    upstream's own figures, by the in-flight reaper, and the budget's spend grows by exactly that.
    `content`: what the calls carry (tests/fixtures/contents.py: text, document, image, tools, thinking)."""
    result = CellResult(f"web kill -9, answered calls unsettled (/anthropic/v1/messages, {content})",
                        f"{calls} calls answered, their settlements held back")  # fmt: skip
    budget = _budget(cluster)
    victim = cluster.victim_web(**_SLOW_REPLY_ENV)
    cluster.call("warm-up", url=victim.url)
    wait_until(lambda: cluster.sql("SELECT count(*) FROM billing_reservation")[0][0] == 0, timeout=30,
               what="the warm-up's settlement")  # fmt: skip
    targets = _targets(cluster, "anthropic", victim.url, streamed=False, calls=calls, content=content)
    since = cluster.mark()
    ((spent_before,),) = cluster.sql("SELECT spent_micros FROM billing_budget WHERE id = %s", budget)
    with ThreadPoolExecutor(calls) as pool, psycopg.connect(cluster.database_url) as lock:
        asked = [pool.submit(httpx.post, target.url, timeout=60, **target.request) for target in targets]
        wait_until(lambda: cluster.sql("SELECT count(*) FROM billing_reservation")[0][0] >= calls, timeout=60,
                   what="every call admitted")  # fmt: skip
        lock.execute("SELECT 1 FROM billing_budget WHERE id = %s FOR UPDATE", (budget,))  # held until rollback
        try:
            replies = [future.result(timeout=60) for future in asked]  # upstream answers ~6 s after admission
            wait_until(lambda: cluster.sql(_LOCK_WAITS)[0][0] >= 1, timeout=30, what="a settlement held back")
            time.sleep(0.5)  # the others queue behind it meanwhile
            held_back = cluster.sql(_LOCK_WAITS)[0][0]
        finally:
            victim.proc.kill()
            victim.proc.wait(10)
            lock.rollback()
    killed_at = time.monotonic()
    result.calls_sent = calls
    answered = {r.json()["id"]: r.json()["usage"] for r in replies if r.status_code == 200}
    if len(answered) != calls:
        result.notes.append(f"answered {len(answered)} of {calls}: {[r.status_code for r in replies]}")

    def billed() -> list[tuple[Any, ...]]:
        return cluster.sql("SELECT upstream_message_id, input_tokens, output_tokens, cost_micros, event_key "
                           "FROM billing_ledgerentry WHERE id > %s AND upstream_message_id = ANY(%s)",
                           since.ledger_id, list(answered))  # fmt: skip

    try:
        wait_until(lambda: len(billed()) >= len(answered), timeout=60, what="the answered calls to be billed",
                   interval=0.25)  # fmt: skip
        result.recovery_seconds = time.monotonic() - killed_at
    except TimeoutError as exc:
        result.notes.append(f"{exc}: {len(billed())} rows")
    rows = billed()
    result.completed, result.lost = len(rows), max(len(answered) - len(rows), 0)
    _bill(result, cluster, since)
    ((spent_after, reserved),) = cluster.sql("SELECT spent_micros, reserved_micros FROM billing_budget "
                                             "WHERE id = %s", budget)  # fmt: skip
    exact = all(
        (row[1], row[2]) == (answered[row[0]]["input_tokens"], answered[row[0]]["output_tokens"]) for row in rows
    )
    result.extra = {
        "answered": len(answered), "rows": len(rows), "event_keys": len({row[4] for row in rows}),
        "held_back": held_back, "exact": exact, "spent": spent_after - spent_before,
        "ledger_cost": sum(row[3] for row in rows), "reserved": reserved,
        "held": cluster.sql("SELECT count(*) FROM billing_reservation")[0][0],
    }  # fmt: skip
    result.notes.append(f"settlements held back at the kill: {held_back}; {result.extra}")
    return result


_LOCK_WAITS = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"


def cell_web_kill_mid_stream(cluster: Cluster, surface: str = "anthropic", *, streams: int = 4) -> CellResult:
    """`cell_web_kill_mid_call` with `streams` streamed calls (the figures' cell)."""
    return cell_web_kill_mid_call(cluster, surface, streamed=True, calls=streams)


def _outage(
    cluster: Cluster,
    result: CellResult,
    *,
    down: Callable[[], None],
    up: Callable[[], None],
    failing: str,
    hold: float,
    jobs: int,
    refusals: set[int],
) -> dict[str, Any]:
    """Steady calls and some jobs; `down()`, hold, `up()`; recovery = service back to the first call
    answered 200 (and every job done). Returns what /readyz said while it was down."""
    since = cluster.mark()
    ids = cluster.submit_jobs(jobs, "[[latency:800]] job across an outage")
    load = Load(cluster)
    time.sleep(1.0)
    down()
    time.sleep(min(hold, 2.5))
    status, body = cluster.readyz(0)
    time.sleep(max(hold - 2.5, 0))
    up()
    back = time.monotonic()
    try:
        result.recovery_seconds = load.first_ok_after(back)
        cluster.wait_jobs(ids, timeout=90)
        result.recovery_seconds = max(result.recovery_seconds, time.monotonic() - back)
    except TimeoutError as exc:
        result.notes.append(str(exc))
    time.sleep(0.5)
    calls = [call for _, call in load.stop()]
    _tally(result, calls, refusals=refusals)
    done = cluster.job_statuses(ids).get("succeeded", 0)
    result.jobs_sent, result.completed = jobs, result.completed + done
    result.lost += jobs - done
    _bill(result, cluster, since)
    ready = {"status": status, "body": body, "names_it": status == 503 and failing in body.get("failing", []),
             "back": back}  # fmt: skip
    if not ready["names_it"]:
        result.notes.append(f"/readyz while {failing} was down: {status} {body}")
    return ready


def cell_postgres_restart(cluster: Cluster, *, hold: float = 5.0, jobs: int = 6) -> tuple[CellResult, dict[str, Any]]:
    """Postgres stopped (fast shutdown: every session ended) for `hold` seconds under load."""
    result = CellResult("Postgres restart", f"3 callers, {jobs} jobs, {hold:g} s down")
    ready = _outage(cluster, result, down=lambda: cluster.pg.stop("fast"), up=cluster.pg.start, failing="postgres",
                    hold=hold, jobs=jobs, refusals={503})  # fmt: skip
    return result, ready


def cell_redis_restart(cluster: Cluster, *, hold: float = 4.0, jobs: int = 6) -> tuple[CellResult, dict[str, Any]]:
    """The cache/limits Redis killed and started again empty: calls go on (limits fail open)."""
    result = CellResult("Redis restart", f"3 callers, {jobs} jobs, {hold:g} s down")
    ready = _outage(cluster, result, down=cluster.redis.stop, up=cluster.redis.start, failing="redis", hold=hold,
                    jobs=jobs, refusals={503})  # fmt: skip
    return result, ready


def cell_broker_outage(cluster: Cluster, *, hold: float = 5.0, jobs: int = 6) -> tuple[CellResult, dict[str, Any]]:
    """The broker (a private redis) down then back empty: queued messages are gone; the sweeper
    republishes from the job table, workers reconnect; jobs submitted during the outage still run."""
    assert cluster.broker_redis is not None, "the broker cell needs the private redis broker"
    result = CellResult("broker down then back", f"3 callers, {jobs}+{jobs} jobs, {hold:g} s down")
    broker = cluster.broker_redis
    late: list[str] = []

    def down() -> None:
        broker.stop()
        late.extend(cluster.submit_jobs(jobs, "job published while the broker is down"))

    ready = _outage(cluster, result, down=down, up=broker.start, failing="broker", hold=hold, jobs=jobs,
                    refusals={503})  # fmt: skip
    try:
        cluster.wait_jobs(late, timeout=60)
        result.recovery_seconds = max(result.recovery_seconds or 0.0, time.monotonic() - ready["back"])
    except TimeoutError as exc:
        result.notes.append(f"jobs published during the outage: {exc}")
    done = cluster.job_statuses(late).get("succeeded", 0)
    result.jobs_sent += len(late)
    result.completed += done
    result.lost += len(late) - done
    return result, ready


STORMS = {
    "429": ("429", "upstream 429 storm"),
    "529": ("529", "upstream 529 storm"),
    "500": ("500", "upstream 500 storm"),
    "timeout": ("hang", "upstream timeout storm"),
}


def cell_upstream_storm(cluster: Cluster, kind: str, *, seconds: float = 4.0, jobs: int = 4) -> CellResult:
    """Every upstream call to the model fails (`model_faults`) for `seconds`: calls get error answers
    (never no answer), jobs wait and retry, and after the storm calls and jobs succeed again."""
    spec, name = STORMS[kind]
    result = CellResult(name, f"3 callers, {jobs} jobs, {seconds:g} s storm")
    since = cluster.mark()
    cluster.emulator.set_config(model_faults={MODEL: spec})
    load = Load(cluster, pause=0.3)
    ids = cluster.submit_jobs(jobs, f"job in a {kind} storm")
    time.sleep(seconds)
    cluster.emulator.set_config(model_faults={MODEL: None})
    over = time.monotonic()
    try:
        result.recovery_seconds = load.first_ok_after(over)
        cluster.wait_jobs(ids, timeout=60)
        result.recovery_seconds = max(result.recovery_seconds, time.monotonic() - over)
    except TimeoutError as exc:
        result.notes.append(str(exc))
    calls = [call for _, call in load.stop()]
    # What a client may be told while upstream fails: upstream's own error, a gateway 5xx naming it,
    # 429 (upstream or our limiter), 504 for a timeout. A 500 "Internal server error" is a crash: lost.
    _tally(result, calls, refusals={429, 502, 503, 504, 529})
    done = cluster.job_statuses(ids).get("succeeded", 0)
    result.jobs_sent, result.completed = jobs, result.completed + done
    result.lost += jobs - done
    _bill(result, cluster, since)
    return result


def cell_burst(cluster: Cluster, *, factor: int = 10) -> tuple[CellResult, float]:
    """A client at `factor` x its requests-per-minute limit, all at once over both web processes: every
    excess call is refused 429, none is lost, the ledger holds exactly the calls let through."""
    rpm = cluster.keys.limited_rpm
    total = rpm * factor
    result = CellResult(f"client burst at {factor}x its limit", f"{total} calls at once, limit {rpm}/min")
    since = cluster.mark()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=min(total, 16)) as pool:
        calls = list(pool.map(lambda i: cluster.call("burst", web=i % len(cluster.webs), key=cluster.keys.limited),
                              range(total)))  # fmt: skip
    elapsed = time.monotonic() - started
    _tally(result, calls, refusals={429})
    billing = _bill(result, cluster, since)
    billed = sum(1 for _, kind, _ in billing.rows if kind == "message")
    if billed != result.completed:
        result.notes.append(f"ledger rows {billed} != calls answered 200 {result.completed}")
        result.lost += abs(billed - result.completed)
    return result, elapsed


CELLS = ("worker-kill", "web-kill", "redis", "postgres", "broker", "storms", "burst")


def run_all(
    cluster: Cluster, *, scale: int = 1, log: Callable[[str], None] = print, only: Collection[str] = CELLS
) -> list[CellResult]:
    """Every cell once (or those named in `only`, see CELLS), in an order where each leaves the cluster
    healthy for the next."""
    results: list[CellResult] = []

    def done(result: CellResult) -> None:
        results.append(result)
        log(f"  {result.fault}: completed {result.completed}, lost {result.lost}, double billed "
            f"{result.double_billed}, recovery {result.recovery_seconds}")  # fmt: skip

    if "worker-kill" in only:
        done(cell_worker_kill(cluster, jobs=12 * scale))
    if "web-kill" in only:
        for surface in STREAM_SURFACES:
            done(cell_web_kill_mid_stream(cluster, surface, streams=4 * scale))
        for surface in STREAM_SURFACES:
            done(cell_web_kill_mid_call(cluster, surface, streamed=False, calls=4 * scale))
        done(cell_web_kill_answered_unsettled(cluster, calls=4 * scale))
        for surface in TURN_SURFACES:
            done(cell_web_kill_mid_call(cluster, surface, streamed=True, calls=4 * scale))
    if "redis" in only:
        done(cell_redis_restart(cluster, jobs=6 * scale)[0])
    if "postgres" in only:
        done(cell_postgres_restart(cluster, jobs=6 * scale)[0])
    if "broker" in only:
        done(cell_broker_outage(cluster, jobs=6 * scale)[0])
    if "storms" in only:
        for kind in STORMS:
            done(cell_upstream_storm(cluster, kind, jobs=4 * scale))
    if "burst" in only:
        done(cell_burst(cluster)[0])
    return results


@contextlib.contextmanager
def cluster(**options: Any) -> Iterator[Cluster]:
    with Cluster(**options) as running:
        yield running
