"""A second OS process that verifies keys: reads one raw key per line, answers `ok` or `denied:<reason>`.

Started by test_revocation.py with DATABASE_URL pointing at the test database.
"""

from __future__ import annotations

import os
import sys

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "claudeapp.settings")
    django.setup()
    from claudeapp.api import keys
    from claudeapp.api.errors import InvalidKey

    print("ready", flush=True)
    for line in sys.stdin:
        try:
            keys.verify(line.strip())
            print("ok", flush=True)
        except InvalidKey as exc:
            print(f"denied:{exc.reason}", flush=True)


if __name__ == "__main__":
    main()
