# One command each: `make test` sets up Postgres and the Tansu broker (installing
# them where missing) and runs every test; `make demo` runs the service on the
# shipped examples. See README.md.
SHELL := /bin/bash
export PATH := $(or $(CARGO_HOME),$(HOME)/.cargo)/bin:$(PATH)
CARGO ?= cargo

.PHONY: test demo bench bench-e2e lint stop schemas

test:
	@set -euo pipefail; \
	scripts/ensure-tools.sh; \
	db="$$(scripts/ensure-postgres.sh)"; \
	kafka="$$(scripts/start-broker.sh)"; \
	export CLAIMLINE_TEST_DATABASE_URL="$$db" CLAIMLINE_TEST_KAFKA="$$kafka"; \
	$(CARGO) fmt --all -- --check; \
	$(CARGO) clippy --all-targets -- -D warnings; \
	scripts/check-deploy.sh; \
	$(CARGO) test

demo:
	@scripts/demo.sh

bench: bench-e2e
	$(CARGO) bench --bench evaluate

# BENCH_EVENTS=N to change the default 100,000. A fresh broker of its own
# (port 19193, in-memory) so earlier runs' data does not skew the figures.
bench-e2e:
	@set -euo pipefail; \
	db="$$(scripts/ensure-postgres.sh)"; \
	export CLAIMLINE_TEST_DATABASE_URL="$$db"; \
	BROKER_PORT=19193 scripts/stop.sh; \
	kafka="$$(BROKER_PORT=19193 BROKER_FRESH=1 scripts/start-broker.sh)"; \
	export CLAIMLINE_TEST_KAFKA="$$kafka"; \
	trap 'BROKER_PORT=19193 scripts/stop.sh' EXIT; \
	$(CARGO) bench --bench e2e

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

schemas:
	UPDATE_SCHEMAS=1 $(CARGO) test --test it schemas

stop:
	@scripts/stop.sh
