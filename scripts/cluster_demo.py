"""What `make cluster` shows (scripts/cluster.sh starts the processes, then runs this):

1. a call through each web process (each answers; the upstream request id and the ledger row);
2. a job submitted through the first web process and run by one of the workers, over the broker
   (RabbitMQ in `make cluster`), found by its JSON call line in that worker's log;
3. one budget shared by every web process: a fresh partner key with a small daily budget, calls
   alternating between the web processes until one is refused 402, and the budget's spent figure
   equal to the ledger's sum for the key.

Usage: python scripts/cluster_demo.py --logs .run/cluster http://127.0.0.1:8001 http://127.0.0.1:8002
Exit status 0 when all three held, 1 otherwise (each line says what was seen).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "claudeapp.settings")

MODEL = "claude-haiku-5-5"


def wait_ready(urls: list[str], timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    for url in urls:
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                sys.exit(f"{url}/readyz did not answer 200 within {timeout:.0f} s")
            time.sleep(0.5)


def call(url: str, key: str, text: str) -> httpx.Response:
    body = {"model": MODEL, "max_tokens": 32, "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{url}/api/v1/messages", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logs", type=Path, required=True, help="the directory with worker*.log")
    parser.add_argument("urls", nargs="+")
    args = parser.parse_args()

    import django

    django.setup()
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # the demo prints what it saw; not every request
    from django.contrib.auth import get_user_model
    from django.db.models import Sum

    from billing.models import Budget, LedgerEntry
    from claudeapp.api import keys

    wait_ready(args.urls)
    owner, _ = get_user_model().objects.get_or_create(username="cluster-demo")
    key, raw = keys.create_key(owner=owner, name=f"cluster demo {uuid.uuid4().hex[:6]}", scopes=["messages", "jobs"])
    ok = True
    print(f"\n== 1. a call through each web process (partner key {key.masked})")
    for n, url in enumerate(args.urls, 1):
        response = call(url, raw, f"Hello from web {n}")
        request_id = response.headers.get("request-id", response.headers.get("x-request-id", ""))
        entry = LedgerEntry.objects.filter(principal_kind="partner_key", principal_id=key.pk).first()
        upstream, cost = (entry.upstream_request_id, entry.cost_micros) if entry else (None, 0)
        print(f"  web {n} {url}: {response.status_code}, gateway request {request_id}; "
              f"its ledger row: upstream request {upstream}, {cost} µ$")  # fmt: skip
        ok &= response.status_code == 200

    print("\n== 2. a job through web 1, run by a worker over the broker")
    body = {"model": MODEL, "max_tokens": 32, "messages": [{"role": "user", "content": "A queued hello"}]}
    submitted = httpx.post(f"{args.urls[0]}/api/v1/jobs", json=body, headers={"Authorization": f"Bearer {raw}"})
    job_id = submitted.json().get("id") if submitted.status_code == 202 else None
    print(f"  POST /api/v1/jobs: {submitted.status_code}, job {job_id}")
    status, ran_on = "", ""
    deadline = time.monotonic() + 60
    while job_id and time.monotonic() < deadline and not ran_on:
        got = httpx.get(f"{args.urls[-1]}/api/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {raw}"})
        status = got.json().get("status", "")
        for log in sorted(args.logs.glob("worker*.log")):
            if any(_is_call_line(line, job_id) for line in log.read_text(errors="replace").splitlines()):
                ran_on = log.stem
        time.sleep(0.5)
    print(f"  job {status} (read through web {len(args.urls)}), its call line is in {ran_on or 'no worker log'}")
    ok &= status == "succeeded" and bool(ran_on)

    print("\n== 3. one budget, shared by every web process")
    spent_per_call = LedgerEntry.objects.filter(principal_kind="partner_key", principal_id=key.pk).aggregate(
        total=Sum("cost_micros")
    )["total"] // max(len(args.urls) + 1, 1)
    limit = int(spent_per_call * 4.5)
    budget = Budget.objects.create(scope="partner_key", scope_id=key.pk, period="day", limit_micros=limit)
    budget.refresh_from_db()
    print(f"  daily budget {limit} µ$ for the key, about {limit // max(spent_per_call, 1)} calls' worth")
    refused = False
    for n in range(12):
        url = args.urls[n % len(args.urls)]
        response = call(url, raw, f"Budget call {n}")
        budget.refresh_from_db()
        print(f"  call {n + 1} via web {n % len(args.urls) + 1}: {response.status_code}; budget spent "
              f"{budget.spent_micros} µ$, held {budget.reserved_micros} µ$ of {limit}")  # fmt: skip
        if response.status_code == 402:
            refused = True
            break
    since_budget = LedgerEntry.objects.filter(
        principal_kind="partner_key", principal_id=key.pk, created_at__gte=budget.created_at
    )
    billed = since_budget.aggregate(total=Sum("cost_micros"))["total"] or 0
    print(f"  refused with 402 once the shared budget ran out: {refused}; spent {budget.spent_micros} µ$ = "
          f"ledger since the budget {billed} µ$: {budget.spent_micros == billed}")  # fmt: skip
    ok &= refused and budget.spent_micros == billed
    print(f"\ncluster demo: {'all three shown' if ok else 'something above did not hold'}")
    return 0 if ok else 1


def _is_call_line(line: str, job_id: str) -> bool:
    if not line.startswith("{") or job_id not in line:
        return False
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return record.get("event") == "call" and record.get("job_id") == job_id


if __name__ == "__main__":
    sys.exit(main())
