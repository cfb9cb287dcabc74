# KnowDo — `make up` runs the platform on the bundled sample feeds; `make test` runs the tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help
STACK := infra/local/stack.sh
ENV := source infra/local/env.sh &&
PYTEST_ARGS ?=

.PHONY: help setup up down status test test-fast test-faults lint lint-sql dbt-docs logs clean-local bench bench-ingest bench-transform fuzz

help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## install everything needed (idempotent): uv, environments, PostgreSQL, databases, metadata, admin users
	@bash $(STACK) setup

up: setup ## bring the stack up and run the main job on the sample feeds through the scheduler
	@bash $(STACK) start
	@$(ENV) .venv/bin/knowdo main-job
	@$(ENV) echo; \
	 echo "KnowDo is up."; \
	 echo "  Airflow   $$KNOWDO_AIRFLOW_URL   (user admin, password in \$$KNOWDO_AIRFLOW_ADMIN_PASSWORD, default admin)"; \
	 echo "  Superset  $$KNOWDO_SUPERSET_URL/superset/dashboard/knowdo-service-use/   (user $$KNOWDO_SUPERSET_ADMIN_USER, password in \$$KNOWDO_SUPERSET_ADMIN_PASSWORD, default admin)"; \
	 echo "  Warehouse postgresql://knowdo_analyst@$$KNOWDO_PG_HOST:$$KNOWDO_PG_PORT/$$KNOWDO_WAREHOUSE_DB (read-only, marts only)"; \
	 echo "  Stop with 'make down'; see what runs with 'make status'."

down: ## stop supervisord, every process it started (children too), any stray of the stack, then PostgreSQL
	@bash $(STACK) stop

status: ## PostgreSQL, each supervised service's state (supervisorctl status) and any process of the stack outside supervision
	@bash $(STACK) status

test: setup ## run the whole test suite: unit, integration (real cluster), end-to-end (Airflow, dbt, GX, Superset, browser)
	@bash $(STACK) ensure-browser
	@$(ENV) .venv/bin/python -m pytest $(PYTEST_ARGS)

# issue 12: the fault-injection suite alone (it is part of `make test` too); it starts the stack itself
test-faults: setup ## the fault-injection suite (tests/faults: kills, outages, full disk, races) against this checkout's stack
	@$(ENV) .venv/bin/python -m pytest tests/faults $(PYTEST_ARGS)

test-fast: ## unit and guard tests only (no services)
	@$(ENV) .venv/bin/python -m pytest -m "not integration and not e2e and not browser and not faults" $(PYTEST_ARGS)

lint: ## ruff on Python, import-linter (layers, no cycle), sqlfluff on the dbt SQL (lint-sql)
	@.venv/bin/ruff check src dags tests bench
	@.venv/bin/ruff format --check src dags tests bench
	@# issue 14: the package's layers and no import cycle ([tool.importlinter] in pyproject.toml)
	@.venv/bin/lint-imports --no-cache
	@# issue 14: the dbt models and tests (sqlfluff, dbt templater; needs PostgreSQL, see lint-sql)
	@$(MAKE) --no-print-directory lint-sql

# --- issue 14: sqlfluff (dbt templater) on the dbt models and tests, from the dbt environment (the
# templater needs dbt-core beside it; config in dbt_project/.sqlfluff). dbt compiles the incremental
# models against the warehouse (is_incremental looks the table up), so PostgreSQL and the warehouse's
# database and roles are made sure of (init-db: idempotent; after `make test` in CI the cluster may be
# stopped), not the stack. Part of `lint`.
lint-sql: ## sqlfluff with the dbt templater on the dbt models and tests (starts PostgreSQL only)
	@bash $(STACK) init-db >/dev/null
	@$(ENV) cd dbt_project && $$KNOWDO_DBT_VENV/bin/sqlfluff lint models tests --processes 2
# --- end issue 14

dbt-docs: ## build dbt docs (catalog and manifest) into .local/dbt/target
	@$(ENV) cd dbt_project && $$KNOWDO_DBT_VENV/bin/dbt docs generate

bench: bench-ingest bench-transform ## both benchmarks (~35 min; bench/README.md)

bench-ingest: ## knowdo ingest vs psql \copy and pandas, 1M and 10M rows (~15 min; bench/ingest/README.md)
	@bash $(STACK) start-pg
	@$(ENV) .venv/bin/python bench/ingest/run.py --rows 1000000 10000000 $(BENCH_ARGS)

bench-transform: ## incremental dbt run (+1 month) vs full refresh, 44.6M DHIS2 values (~20 min, ~15 GB disk; bench/transform/README.md)
	@bash $(STACK) start-pg
	@$(ENV) .venv/bin/python bench/transform/run.py $(BENCH_ARGS)

# --- issue 13: fuzzing (the short derandomized pass runs in `make test`) ---------------------------
fuzz: ## long fuzzing of every parser and `knowdo check` (hypothesis, random; KNOWDO_FUZZ_EXAMPLES per target, default 2000)
	@$(ENV) HYPOTHESIS_PROFILE=fuzz nice .venv/bin/python -m pytest tests/fuzz -p no:cacheprovider $(PYTEST_ARGS)
# --- end issue 13 ---------------------------------------------------------------------------------

logs: ## list the service logs
	@ls -l .local/log/

clean-local: down ## delete the local cluster, landing zone and logs (.local/): everything `make up` made
	@rm -rf .local
