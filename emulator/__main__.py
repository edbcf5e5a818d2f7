"""Command line: `python -m emulator --port 8765 [--host 127.0.0.1] [--config file.json] [flags]`.

With --port 0 the OS picks a free port; the first stdout line is always
`EMULATOR_LISTENING http://HOST:PORT` so a parent process can find it.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from typing import Any

import uvicorn

from emulator.app import EmulatorApp
from emulator.config import READY_PREFIX, load_config
from emulator.state import State


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m emulator", description="Offline Anthropic Messages API emulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 = pick a free port")
    p.add_argument("--config", help="JSON file merged over the defaults")
    p.add_argument("--latency-ms", type=float, help="delay before response headers")
    p.add_argument("--ttft-ms", type=float, help="delay before the first content chunk")
    p.add_argument("--chunk-ms", type=float, help="delay between streamed content chunks")
    p.add_argument(
        "--keep-alive-seconds",
        type=int,
        default=75,
        help="how long an idle client connection stays open (Anthropic's edge keeps them for minutes; "
        "uvicorn's own 5 s made clients that pool connections for longer send on ones it was closing)",
    )
    p.add_argument(
        "--error-rate",
        action="append",
        default=[],
        metavar="STATUS=RATE",
        help="random fault rate on POST /v1/messages, e.g. 529=0.1 (repeatable)",
    )
    p.add_argument(
        "--model-fault",
        action="append",
        default=[],
        metavar="MODEL=SPEC",
        help="fault for every request to MODEL, e.g. claude-opus-5-5=529 (repeatable)",
    )
    p.add_argument("--seed", type=int, help="seed of the error-rate RNG")
    p.add_argument("--api-key", action="append", dest="api_keys", help="only accept these keys (repeatable)")
    p.add_argument("--batch-seconds", type=float, help="processing time of a message batch")
    p.add_argument("--cache-min-tokens", type=int, help="smallest cacheable prefix")
    p.add_argument("--rpm", type=int, help="emulated org requests per minute")
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="any config key")
    p.add_argument("--log-level", default="warning")
    return p.parse_args(argv)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    simple = {
        "latency_ms": args.latency_ms,
        "ttft_ms": args.ttft_ms,
        "chunk_ms": args.chunk_ms,
        "seed": args.seed,
        "api_keys": args.api_keys,
        "batch_processing_seconds": args.batch_seconds,
        "cache_min_tokens": args.cache_min_tokens,
        "requests_per_minute": args.rpm,
    }
    out.update({k: v for k, v in simple.items() if v is not None})
    if args.error_rate:
        out["error_rates"] = {k: float(v) for k, v in (_pair(item) for item in args.error_rate)}
    if args.model_fault:
        out["model_faults"] = dict(_pair(item) for item in args.model_fault)
    for item in args.set:
        key, value = _pair(item)
        out[key] = json.loads(value)
    return out


def _pair(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep:
        raise SystemExit(f"expected KEY=VALUE, got {item!r}")
    return key.strip(), value.strip()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    state = State(load_config(args.config, overrides(args)))
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        EmulatorApp(state),
        http="httptools",
        loop="uvloop",
        lifespan="off",
        access_log=False,
        log_level=args.log_level,
        server_header=False,
        timeout_graceful_shutdown=1,
        timeout_keep_alive=args.keep_alive_seconds,
    )
    print(f"{READY_PREFIX} http://{host}:{port}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])
    sys.stdout.flush()


if __name__ == "__main__":
    main()
