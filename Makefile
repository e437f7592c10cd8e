# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test bench soak lint docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,dev]'
	touch $@ $(RUN_STAMP)

## run: start firehook on SQLite (API, UI and workers) at http://127.0.0.1:8780
run: $(RUN_STAMP)
	$(BIN)/firehook serve $(ARGS)

## test: the whole suite (unit, integration on SQLite and PostgreSQL, acceptance, browser)
test: $(TEST_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## bench: the benchmarks of bench/, a JSON report in bench/results/
bench: $(TEST_STAMP)
	$(BIN)/python -m bench $(ARGS)

## soak: crash-safety soak (SIGKILL and restart under load, SQLite and PostgreSQL); ARGS="--quick" for a short one
soak: $(TEST_STAMP)
	$(BIN)/python -m bench.soak $(ARGS)

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy src

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
