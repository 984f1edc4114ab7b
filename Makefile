# iuran: `make run` runs the demo batch on embedded infrastructure, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WORKERS ?= 25808

.DEFAULT_GOAL := help
.PHONY: help install tools run up test test-unit lint schemas clean bench profile chaos

help: ## list the commands
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "iuran needs Python 3.11 or newer"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create the virtual environment and install iuran with its test tools

SYSTEM_PACKAGES := prometheus chromium

tools: ## system tools the suite uses: Debian's prometheus (promtool) and chromium
	@if ! command -v promtool >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			echo "installing Debian packages: $(SYSTEM_PACKAGES)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null; \
		else \
			echo "missing system tools: install Debian's $(SYSTEM_PACKAGES)"; exit 1; \
		fi; \
	fi

run: install ## the Malang batch (25,808 workers) end to end on the embedded broker and PostgreSQL
	$(BIN)/iuran demo --workers $(WORKERS)

up: install ## start the embedded infrastructure and every service until Ctrl-C
	$(BIN)/iuran up

test: install tools ## the whole suite: unit, integration (real broker + PostgreSQL) and end to end
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: install ## only the fast unit tests
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

chaos: install ## the fault and bad-input tests, longer (IURAN_CHAOS_ITERATIONS, default 10; docs/reliability.md)
	IURAN_CHAOS_ITERATIONS=$${IURAN_CHAOS_ITERATIONS:-10} IURAN_FUZZ_CASES=$${IURAN_FUZZ_CASES:-200} \
	IURAN_CHAOS_RESULTS=$${IURAN_CHAOS_RESULTS:-$(CURDIR)/.iuran/chaos-results.jsonl} \
		$(BIN)/python -m pytest tests/faults tests/security -rA $(PYTEST_ARGS)

lint: install ## ruff and mypy
	$(BIN)/ruff check schemas services tests
	$(BIN)/mypy schemas services

schemas: install ## regenerate the JSON Schemas (schemas/) and the ledger's schema.sql
	$(BIN)/python -m schemas.generate
	$(BIN)/python -m services.ledger.dump_schema

clean: ## remove the virtual environment and the embedded data
	rm -rf $(VENV) .iuran .pytest_cache

bench: install ## the performance figures: floor vs iuran, CPU, memory, latency soak, scale-out (BENCH_ARGS=--quick; docs/performance.md)
	$(BIN)/iuran bench $(BENCH_ARGS)

profile: install ## the Malang batch with every service under py-spy; summaries in .iuran/profiles/ (PROFILE_ARGS)
	$(BIN)/iuran bench --profile $(PROFILE_ARGS)
