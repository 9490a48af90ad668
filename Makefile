# The two README commands: `make run` (main job on the embedded default) and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: install install-spark run test lint typecheck

$(VENV)/bin/python:
	python3 -m pip install -q "uv==$(UV_VERSION)"
	python3 -m uv venv -q --python 3.11 $(VENV)

# Pinned dependencies from requirements.lock, then the project itself.
# Strict editable mode links each module file into build/, so new modules
# need `make install` again (the test target always does it).
# Bytecode is compiled at install: uv compiles none by default and this machine
# kind sets PYTHONDONTWRITEBYTECODE=1, so every process would otherwise compile
# Prefect, FastAPI, SQLAlchemy and GE again (about twice the start-up time).
# The stamp compiles a venv made before this once (compileall skips what is current).
install: $(VENV)/bin/python
	python3 -m uv pip install -q --compile-bytecode --python $(PY) -r requirements.lock
	python3 -m uv pip install -q --python $(PY) --no-deps -e . --config-settings editable_mode=strict
	@test $(VENV)/.bytecode -nt requirements.lock || { \
	  $(PY) -m compileall -q -j 0 $$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))') >/dev/null 2>&1; \
	  touch $(VENV)/.bytecode; }

# Optional: pyspark for the Spark baseline (`bench/ingest_bench.py --release N --spark`).
install-spark: install
	python3 -m uv pip install -q --compile-bytecode --python $(PY) -r requirements-spark.lock

# The demo starts the local Prefect server once and leaves it running for the next
# commands (`.venv/bin/cablestream server stop` stops it).
run: install
	$(VENV)/bin/cablestream demo

lint:
	$(VENV)/bin/ruff check flows tasks schemas tests bench
	$(VENV)/bin/ruff format --check flows tasks schemas tests bench

# mypy sees the package through the editable link tree, under its real name.
typecheck:
	MYPYPATH=$$(ls -d $(CURDIR)/build/__editable__.cablestream-*) $(VENV)/bin/mypy -p cablestream.schemas -p cablestream.tasks -p cablestream.flows

test: install lint typecheck
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)
