# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
# Both create the environment (.venv, via uv from the lock file) on first use.
PYTHON ?= python3.11
VENV := .venv
# The interpreter that runs uv, resolved before the venv goes first on PATH: the venv's own python3.11
# has neither uv nor pip, so a re-sync after uv.lock changed would otherwise fail.
BASE_PYTHON := $(shell command -v $(PYTHON) 2>/dev/null || echo $(PYTHON))
# Commands run with the venv first on PATH (dbt, dagster, celery are its executables).
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
UV := $(BASE_PYTHON) -m uv

.PHONY: env system-deps demo test dev clean

# --compile-bytecode: every process (dbt, Dagster runs, the daemon, tests) then starts from .pyc files, even
# where PYTHONDONTWRITEBYTECODE is set; importing Dagster from source costs several CPU-seconds per process.
$(VENV)/.synced: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || $(BASE_PYTHON) -m pip install --quiet "uv>=0.5"
	$(UV) sync --frozen --extra dev --compile-bytecode --python $(BASE_PYTHON)
	@touch $@

# Debian's Chromium for the dashboard's browser test (skipped without it); installed when we are root.
system-deps:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		echo "chromium not installed: the dashboard browser test will be skipped"; }

env: $(VENV)/.synced

demo: env
	$(VENV)/bin/watershop demo

test: env system-deps
	$(VENV)/bin/pytest -q -ra -p no:logging

dev: env
	DAGSTER_HOME=$(CURDIR)/data_lake/.dagster_home $(VENV)/bin/dagster dev -w workspace.yaml

clean:
	rm -rf data_lake/watershop.yaml data_lake/landing data_lake/lake data_lake/warehouse data_lake/.dagster_home data_lake/known_people \
		data_lake/reports data_lake/experiments data_lake/category_zones.csv
