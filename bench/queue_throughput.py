"""Queue throughput: jobs/s through real Celery workers vs the same calls made directly.

    .venv/bin/python bench/queue_throughput.py [--workers 2] [--concurrency 8] [--jobs 400]
        [--latency-ms 200] [--max-seconds 120] [--database claudeapp_bench] [--prefetch-multiplier N]

Starts the emulator (loopback, free port) and N `celery worker --pool threads -c C` processes
against a scratch database (created and migrated here; jobs are deleted at the end), then:

- queue: creates M jobs with `jobs.services.create` from --creators threads (each publishes on
  commit) and waits until all are terminal: jobs/s = M / (all done - first create), plus latency;
- direct: the same M calls with the sync SDK from a thread pool of N x C threads in this process.

Prints both rates, the ratio and the workers' CPU per job (utime + stime from /proc over the
measured queue phase: the number that moves when the machine is shared and the rates are noisy).
Needs Postgres and Redis (REDIS_URL: the broker db is used, its `interactive` queue is cleared
first). Bounded: M jobs and --max-seconds per phase. Two runs at once on the same database or
Redis db wreck each other (each deletes the other's jobs and queued messages): give each its own.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "claudeapp.settings")
# As deployed (and as the web benches run): settings default to DEBUG on, which logs every query of every
# job in the workers (and the creators) and so measured a configuration no deployment runs. DEBUG=1 to compare.
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "queue-bench-secret-0123456789abcdefghijklmnopqrstuvwxyz-abcdef")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

MODEL = "claude-haiku-5-5"  # no fallback chain: one upstream call per job
MAX_TOKENS = 64


def main() -> None:
    args = parse_args()
    os.environ["DATABASE_URL"] = ensure_database(args.database)
    os.environ["CLAUDE_MAX_ATTEMPTS"] = "1"
    from emulator.testing import EmulatorProcess

    with EmulatorProcess.start("--rpm", "100000000", "--latency-ms", str(args.latency_ms)) as emulator:
        os.environ["ANTHROPIC_BASE_URL"] = emulator.url
        import django

        django.setup()
        logging.getLogger("httpx2").setLevel(logging.WARNING)  # one INFO line per call would drown the summary
        prepare_schema()
        workers = start_workers(args, emulator.url)
        try:
            run(args, emulator.url, [proc.pid for proc in workers])
        finally:
            for proc in workers:
                stop(proc)
            cleanup()


def ensure_database(name: str) -> str:
    import psycopg

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')  # name from our own CLI flag
    return urlunsplit(parts._replace(path=f"/{name}"))


def prepare_schema() -> None:
    from io import StringIO

    from django.core.management import call_command

    from billing import seed as billing_seed
    from routing import seed as routing_seed

    call_command("migrate", verbosity=0)
    routing_seed.run(stdout=StringIO())
    billing_seed.run(stdout=StringIO())
    cleanup()


def start_workers(args: argparse.Namespace, emulator_url: str) -> list[subprocess.Popen[bytes]]:
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("interactive")
    env = {
        **os.environ,
        "ANTHROPIC_BASE_URL": emulator_url,
        "ANTHROPIC_API_KEY": "",
        "CLAUDE_MAX_ATTEMPTS": "1",
        "CLAUDE_BREAKER_FAILURE_THRESHOLD": "100000",
        "CELERY_WORKER_CONCURRENCY": str(args.concurrency),
        "DB_POOL_MAX_SIZE": str(args.concurrency + 2),
        "CELERY_SKIP_CHECKS": "1",
        "PYTHONPATH": str(ROOT),
    }
    log_dir = Path(tempfile.mkdtemp(prefix="queue-bench-"))
    procs = []
    for n in range(args.workers):
        log = (log_dir / f"worker{n}.log").open("wb")
        argv = [sys.executable, "-m", "celery", "-A", "claudeapp", "worker", "--pool", "threads",
                "-c", str(args.concurrency), "-Q", "interactive", "-n", f"bench{n}-{os.getpid()}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"]  # fmt: skip
        if args.prefetch_multiplier:
            argv += ["--prefetch-multiplier", str(args.prefetch_multiplier)]
        procs.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True))
    time.sleep(0.5)
    for proc in procs:
        if proc.poll() is not None:
            raise SystemExit(f"a worker exited at start; logs in {log_dir}")
    return procs


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (Linux /proc; 0 elsewhere)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return 0.0
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def run(args: argparse.Namespace, emulator_url: str, worker_pids: list[int]) -> None:
    from claudeapp.accounts.models import User
    from claudeapp.accounts.principals import Principal

    user, _ = User.objects.get_or_create(username="queue-bench")
    principal = Principal.for_user(user)
    width = args.workers * args.concurrency
    print(f"emulator latency {args.latency_ms} ms, {args.workers} worker(s) x {args.concurrency} threads,", end=" ")
    print(f"{args.jobs} jobs")
    queue_phase(principal, width * 2, args.max_seconds, args.creators)  # warm: imports, DB pools, SDK connections
    cpu_before = cpu_seconds(worker_pids)
    rate, create_rate, lat = queue_phase(principal, args.jobs, args.max_seconds, args.creators)
    worker_cpu_ms = (cpu_seconds(worker_pids) - cpu_before) * 1000 / args.jobs
    direct = direct_phase(emulator_url, args.jobs, width)
    print(f"queue : {rate:8.1f} jobs/s   job latency p50 {lat[0]:.0f} ms, p95 {lat[1]:.0f} ms")
    print(f"        (created at {create_rate:.0f}/s by {args.creators} threads of this process)")
    print(f"        worker CPU {worker_cpu_ms:.1f} ms per job (all worker processes)")
    print(f"direct: {direct:8.1f} calls/s  (sync SDK, {width} threads, one process)")
    print(f"ratio : {rate / direct:.2f} of direct")


def create_one(principal, payload: dict) -> object:
    from django.db import connection

    from claudeapp.jobs import services

    try:
        return services.create(principal=principal, payload=payload).pk
    finally:
        connection.close()  # back to the pool: executor threads must not keep one each


def queue_phase(principal, count: int, max_seconds: float, creators: int) -> tuple[float, float, tuple[float, float]]:
    from claudeapp.jobs.models import Job

    payload = {"model": MODEL, "max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": "Say hi."}]}
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=creators) as pool:  # like API clients: creation in parallel
        ids = list(pool.map(lambda _: create_one(principal, payload), range(count)))
    created = time.perf_counter() - started
    deadline = time.monotonic() + max_seconds
    while Job.objects.filter(pk__in=ids, status__in=Job.TERMINAL).count() < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"queue phase did not finish within {max_seconds}s")
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    rows = Job.objects.filter(pk__in=ids)
    if rows.exclude(status=Job.Status.SUCCEEDED).exists():
        print(f"warning: {rows.exclude(status=Job.Status.SUCCEEDED).count()} job(s) did not succeed")
    ms = sorted((j.finished_at - j.created_at).total_seconds() * 1000 for j in rows.only("created_at", "finished_at"))
    return count / elapsed, count / created, (statistics.median(ms), ms[int(len(ms) * 0.95) - 1])


def direct_phase(emulator_url: str, count: int, width: int) -> float:
    import anthropic

    client = anthropic.Anthropic(base_url=emulator_url, api_key="bench", max_retries=0)
    messages = [{"role": "user", "content": "Say hi."}]

    def call(_: int) -> object:
        return client.messages.create(model=MODEL, max_tokens=MAX_TOKENS, messages=messages)  # type: ignore[arg-type]

    with ThreadPoolExecutor(max_workers=width) as pool:
        list(pool.map(call, range(width * 2)))  # warm the connection pool
        started = time.perf_counter()
        list(pool.map(call, range(count)))
        elapsed = time.perf_counter() - started
    client.close()
    return count / elapsed


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the worker and its pool threads only
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def cleanup() -> None:
    from billing.models import LedgerEntry
    from claudeapp.jobs.models import Job

    Job.objects.all().delete()
    LedgerEntry.objects.filter(kind="job").delete()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--creators", type=int, default=8, help="threads creating jobs (the API's clients)")
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--database", default="claudeapp_bench")
    parser.add_argument("--prefetch-multiplier", type=int, default=0, help="the workers' (default: settings')")
    return parser.parse_args()


if __name__ == "__main__":
    main()
