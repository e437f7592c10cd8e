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

# A local try-out sends webhooks to receivers on this machine (the README's first one listens on
# 127.0.0.1:9000): `make run` lets loopback through the outbound guard unless
# FIREHOOK_OUTBOUND_ALLOW is set or ARGS has --outbound-allow. `firehook serve` keeps refusing it.
RUN_OUTBOUND_ALLOW ?= 127.0.0.1/32,::1/128,localhost

## run: start firehook on SQLite (API, UI and workers) at http://127.0.0.1:8780, loopback allowed
run: $(RUN_STAMP)
ifeq ($(findstring --outbound-allow,$(ARGS)),)
	@if [ -z "$${FIREHOOK_OUTBOUND_ALLOW+set}" ]; then \
	  echo "make run: webhooks and fetch may reach this machine ($(RUN_OUTBOUND_ALLOW)) for a local try-out;" \
	       "firehook serve refuses loopback unless --outbound-allow or FIREHOOK_OUTBOUND_ALLOW allows it"; fi
	FIREHOOK_OUTBOUND_ALLOW="$${FIREHOOK_OUTBOUND_ALLOW-$(RUN_OUTBOUND_ALLOW)}" $(BIN)/firehook serve $(ARGS)
else
	$(BIN)/firehook serve $(ARGS)
endif

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
