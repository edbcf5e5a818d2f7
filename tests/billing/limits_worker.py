"""A separate OS process hammering billing.limits.acquire, for the cross-process limiter test.

Usage: python -m tests.billing.limits_worker <requests> <user_id> <model_id>
Prints "ready", waits for "go" on stdin, fires all requests from 10 threads, prints a JSON summary.
"""

from __future__ import annotations

import json
import os
import sys
import threading

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "claudeapp.settings")


def main() -> None:
    import django

    django.setup()
    from billing import limits
    from billing.errors import RateLimited
    from claudeapp.accounts.principals import Principal

    count, user_id, model_id = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    principal = Principal(kind="user", id=user_id, user_id=user_id)
    limits._policies.get()  # load policies before the start line, so only the Lua calls race
    results: list[object] = []
    todo = iter(range(count))
    lock = threading.Lock()

    def fire() -> None:
        while True:
            with lock:
                if next(todo, None) is None:
                    return
            try:
                limits.acquire(principal=principal, model_id=model_id, input_tokens=10, max_tokens=10)
                results.append("ok")
            except RateLimited as exc:
                results.append(exc.retry_after_seconds)

    print("ready", flush=True)
    sys.stdin.readline()
    threads = [threading.Thread(target=fire) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    retries = [r for r in results if r != "ok"]
    print(json.dumps({"passed": results.count("ok"), "retry_after": retries}), flush=True)


if __name__ == "__main__":
    main()
