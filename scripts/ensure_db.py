"""Create the database named by DATABASE_URL when it does not exist yet."""

from __future__ import annotations

import os
import sys

import environ
import psycopg
from psycopg import sql

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/claudeapp"


def main() -> int:
    env = environ.Env()
    environ.Env.read_env(os.path.join(os.path.dirname(__file__), "..", ".env"), overwrite=False)
    cfg = env.db_url_config(env.str("DATABASE_URL", default=DEFAULT_URL))
    params = {
        "host": cfg.get("HOST") or "127.0.0.1",
        "port": cfg.get("PORT") or 5432,
        "user": cfg.get("USER") or "postgres",
        "password": cfg.get("PASSWORD") or None,
        "dbname": "postgres",
        "autocommit": True,
    }
    name = cfg["NAME"]
    with psycopg.connect(**params) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            print(f"database {name}: exists")
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"database {name}: created")
    return 0


if __name__ == "__main__":
    sys.exit(main())
