# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
# Both create the environment (.venv, via uv from the lock file) on first use.
PYTHON ?= python3.11
VENV := .venv
UV := $(PYTHON) -m uv

.PHONY: env demo test bench dev clean

$(VENV)/.synced: pyproject.toml uv.lock
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv>=0.5"
	$(UV) sync --frozen --extra dev --python $(PYTHON)
	@touch $@

env: $(VENV)/.synced

demo: env
	$(VENV)/bin/watershop demo

test: env
	$(VENV)/bin/pytest -q -ra

dev: env
	DAGSTER_HOME=$(CURDIR)/data_lake/.dagster_home $(VENV)/bin/dagster dev -w workspace.yaml

clean:
	rm -rf data_lake/watershop.yaml data_lake/landing data_lake/lake data_lake/warehouse data_lake/.dagster_home data_lake/known_people
