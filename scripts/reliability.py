"""The reliability figures (docs/reliability.md): every fault of the fault suite, under more load, on
a cluster of real processes on private services, and a table of what happened.

    .venv/bin/python scripts/reliability.py            # the table, as Markdown, on stdout
    .venv/bin/python scripts/reliability.py --scale 2  # twice the jobs per fault
    .venv/bin/python scripts/reliability.py --write docs/reliability.md   # replace the doc's table
    .venv/bin/python scripts/reliability.py --only worker-kill,web-kill  # some cells, printed only

The cluster (tests/chaos/harness.py) is a private Postgres cluster and two private redis-servers
(cache, broker) on free ports, the emulator, two web processes, two workers and one beat: nothing
touches the machine's own Postgres, Redis or RabbitMQ. Takes 3-5 minutes. Exit status 1 when any
fault lost a call or a job or billed one twice.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from tests.chaos import harness  # noqa: E402

HEADER = ["fault", "load", "calls sent", "jobs sent", "completed", "refused (answered)", "lost",
          "double billed", "recovery"]  # fmt: skip
BEGIN, END = "<!-- reliability table: begin -->", "<!-- reliability table: end -->"


def table(results: list[harness.CellResult]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(result.row()) + " |" for result in results]
    return "\n".join(lines)


def details(results: list[harness.CellResult]) -> str:
    out = []
    for result in results:
        statuses = ", ".join(f"{status or 'no answer'}: {n}" for status, n in sorted(result.statuses.items()))
        extra = [f"statuses {statuses}"] if statuses else []
        if result.unbilled:
            extra.append(f"{result.unbilled} upstream charge(s) with no ledger row")
        extra += result.notes
        if extra:
            out.append(f"- {result.fault}: " + "; ".join(extra))
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=1, help="multiply the jobs per fault (default 1)")
    parser.add_argument("--write", type=Path, help="replace the table between the markers in this file")
    parser.add_argument("--only", help=f"run only these cells, comma-separated ({', '.join(harness.CELLS)}); "
                        "prints the rows, never --write (the doc's table is one whole run)")  # fmt: skip
    args = parser.parse_args()
    only = harness.CELLS if not args.only else tuple(c.strip() for c in args.only.split(","))
    unknown = set(only) - set(harness.CELLS)
    if unknown or (args.only and args.write):
        parser.error(f"unknown cells {sorted(unknown)}" if unknown else "--only prints; it cannot --write")

    started = time.monotonic()
    print("starting the cluster (private Postgres and Redis, emulator, 2 web, 2 workers, beat)...", file=sys.stderr)
    with harness.Cluster(webs=2, workers=2) as cluster:
        print(f"  up in {time.monotonic() - started:.0f} s; running the faults", file=sys.stderr)
        results = harness.run_all(cluster, scale=args.scale, only=only, log=lambda line: print(line, file=sys.stderr))
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.node() or 'this machine'}, {os.cpu_count()} cores, Python {platform.python_version()}"
    block = "\n".join([
        BEGIN,
        f"Run {when} on {machine}, `--scale {args.scale}`{f' --only {args.only}' if args.only else ''}, "
        f"{time.monotonic() - started:.0f} s in all.",
        "",
        table(results),
        "",
        details(results),
        END,
    ])  # fmt: skip
    print(block)
    if args.write:
        text = args.write.read_text()
        pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
        if not pattern.search(text):
            sys.exit(f"{args.write} has no {BEGIN} ... {END} block to replace")
        args.write.write_text(pattern.sub(lambda _: block, text))
        print(f"wrote the table into {args.write}", file=sys.stderr)
    bad = [r for r in results if r.lost or r.double_billed]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
