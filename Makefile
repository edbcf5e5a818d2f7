.PHONY: run test lint bench

# Start the whole product: emulator (when no ANTHROPIC_API_KEY), web, worker, beat.
run:
	bash scripts/run.sh

# Install what tests need, start Postgres/Redis if down, run lint, checks and the full suite.
test:
	bash scripts/test.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/lint-imports --no-cache
