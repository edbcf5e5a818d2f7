.PHONY: run test lint bench bench-side-by-side cluster chaos reliability

# Start the whole product: emulator (when no ANTHROPIC_API_KEY), web, worker, beat.
run:
	bash scripts/run.sh

# Install what tests need, start Postgres/Redis if down, run lint, checks and the full suite.
test:
	bash scripts/test.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/lint-imports --no-cache

# docs/deploy.md on one machine: 2 web processes, 2 workers, 1 beat on RabbitMQ, then a demo of a call
# through each, a job and a shared budget. Runs until Ctrl-C (CLUSTER_DEMO_ONLY=1: stop after the demo).
cluster:
	bash scripts/cluster.sh

# The fault suite alone (it also runs in `make test`): real processes on private Postgres/Redis.
chaos:
	.venv/bin/python -m pytest tests/chaos

# docs/reliability.md's table: every fault under load (3-5 minutes). --write replaces the doc's table.
reliability:
	.venv/bin/python scripts/reliability.py --write docs/reliability.md

# This gateway vs LiteLLM vs the upstream, same run (bench/side_by_side/README.md).
bench-side-by-side:
	bash bench/side_by_side/run_side_by_side.sh
