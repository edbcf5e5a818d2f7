#!/usr/bin/env bash
# Start RabbitMQ when it is down (the command this machine kind documents), for `make cluster` and the
# RabbitMQ broker test. Not fatal when RabbitMQ is not installed: that test then skips, saying why.
set -uo pipefail

up() { timeout 2 bash -c '</dev/tcp/127.0.0.1/5672' 2>/dev/null; }

if up; then
  echo "rabbitmq: up"
  exit 0
fi
if ! command -v rabbitmq-server >/dev/null 2>&1; then
  echo "rabbitmq: not installed (apt-get install rabbitmq-server); the RabbitMQ broker test will skip" >&2
  exit 0
fi
echo "rabbitmq: down, starting it"
rabbitmq-server -detached
for _ in $(seq 1 60); do up && break; sleep 1; done
if up; then
  # The port opens before the node is fully booted; wait for it so rabbitmqctl works.
  timeout 60 rabbitmqctl -q await_startup >/dev/null 2>&1 || true
  echo "rabbitmq: up"
else
  echo "rabbitmq: did not start; the RabbitMQ broker test will skip" >&2
fi
