# Frontline VoC — every command bootstraps uv and the locked environment itself.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_SYSTEM := $(shell command -v uv 2>/dev/null)
UV ?= $(if $(UV_SYSTEM),$(UV_SYSTEM),$(CURDIR)/.tools/bin/uv)
RUN := $(UV) run --frozen
export VOC_DATA_DIR ?= $(CURDIR)/var
CHROMIUM := /usr/bin/chromium
# The suite runs on this many pytest-xdist workers, then its `alone` tests by themselves
# (scripts/test_suite.sh); 1 runs it all in one process. Most tests wait on service processes,
# so two workers keep a 2-core box busy where one left a core idle.
export PYTEST_WORKERS ?= 2
# The last line of `make test` when the browser tests could not run (they skip themselves).
BROWSER_NOTE = [ -x $(CHROMIUM) ] || echo "make: browser tests skipped ($(CHROMIUM) not installed); run them with 'make test-browser' (as root it installs Debian's chromium)"

.PHONY: help bootstrap run test test-sqlite test-postgres test-browser bench eval train proto proto-check openapi openapi-check lint fmt clean

help: ## list the commands
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  make %-14s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	@echo "[make] installing uv into .tools/ (no system changes)"
	@python3 -m venv $(CURDIR)/.tools
	@$(CURDIR)/.tools/bin/pip install --quiet --disable-pip-version-check uv

.venv/.synced-bytecode: uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml bench/pyproject.toml) | $(UV)
	@$(UV) sync --frozen --all-packages --compile-bytecode
	@touch $@

# Bytecode is compiled ahead, because every service process (dozens per test run) would
# otherwise compile its imports from source where PYTHONDONTWRITEBYTECODE is set: 4-5 s of CPU
# per process instead of 2 on a slow box. The stamp's name changed with it, so an existing
# .venv is synced (and compiled) once more. The project's own sources are refreshed on every
# call (up to date: 0.3 s); a file that does not compile is left for ruff and the tests.
bootstrap: .venv/.synced-bytecode ## install uv (if missing) and the locked environment
	@$(RUN) python -m compileall -qq -j 0 libs services tools bench || \
	  echo "[make] some sources were not byte-compiled (ruff and the tests will say why)" >&2

run: bootstrap ## start nats-server + the four services with demo data (Ctrl-C stops)
	@$(RUN) voc up

test: test-sqlite ## the whole test suite (embedded default: SQLite files)

test-sqlite: bootstrap
	@VOC_TEST_DATABASE=sqlite scripts/test_suite.sh $(RUN) pytest $(PYTEST_ARGS); status=$$?; $(BROWSER_NOTE); exit $$status

test-postgres: bootstrap ## the whole suite on PostgreSQL (VOC_TEST_POSTGRES_URL, default 127.0.0.1:5432)
	@VOC_TEST_DATABASE=postgres scripts/test_suite.sh $(RUN) pytest $(PYTEST_ARGS); status=$$?; $(BROWSER_NOTE); exit $$status

test-browser: bootstrap ## the staff app in headless Chromium (as root: installs Debian's chromium + CJK fonts first)
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "[make] installing Debian's chromium and fonts-noto-cjk for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	  else \
	    echo "make: $(CHROMIUM) not installed; as root: apt-get install chromium fonts-noto-cjk"; exit 1; \
	  fi; \
	fi
	@VOC_TEST_DATABASE=sqlite $(RUN) pytest -m browser tests/browser $(PYTEST_ARGS)

bench: bootstrap ## load benchmark: feedback -> push latency and throughput
	@$(RUN) python -m voc_bench.system $(BENCH_ARGS)

eval: bootstrap ## classifier report: model vs lexicon on held-out real text and the project set
	@$(RUN) python -m voc_feedback.classification.evaluate --data data/classifier $(EVAL_ARGS)

train: bootstrap ## retrain the classifier from data/classifier (deterministic; writes the committed model)
	@OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(RUN) python -m voc_feedback.classification.train --data data/classifier $(TRAIN_ARGS)

proto: bootstrap ## regenerate the Python stubs from proto/
	@$(RUN) python scripts/gen_proto.py

proto-check: bootstrap
	@$(RUN) buf lint proto
	@tmp=$$(mktemp -d); $(RUN) python scripts/gen_proto.py $$tmp >/dev/null 2>&1 && \
	  diff -r -q -x __pycache__ -x py.typed $$tmp/voc libs/contracts/src/voc && echo "proto: stubs up to date" || \
	  { echo "proto: generated stubs are stale; run 'make proto'"; rm -rf $$tmp; exit 1; }; rm -rf $$tmp

openapi: bootstrap ## write the four services' OpenAPI documents to docs/openapi/
	@$(RUN) voc openapi

openapi-check: bootstrap
	@$(RUN) voc openapi --check

lint: bootstrap proto-check openapi-check ## ruff, ruff format --check, strict mypy, proto and OpenAPI drift
	@$(RUN) ruff check .
	@$(RUN) ruff format --check .
	@$(RUN) mypy libs/platform/src tools/cli/src bench/src services/feedback/src services/profile/src services/actions/src services/notify/src

fmt: bootstrap ## format and autofix
	@$(RUN) ruff format .
	@$(RUN) ruff check --fix .

clean: ## remove the local data dir (databases, JetStream store, demo credentials)
	rm -rf var
