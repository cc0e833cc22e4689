# site-extender: `make run` serves the extender, `make test` runs every test. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: run test test-fast venv bench bench-e2e clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the project's dependencies change. `make run` needs the runtime dependencies only;
# the test stamp installs those and the test extra.
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

$(BENCH_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

# Not part of `make test`: minutes, and figures that depend on the machine. Writes bench/RESULTS.md.
bench: $(STAMP) $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# The real scheduling loop (etcd, kube-apiserver, kube-scheduler from ../shared/k8s or SITE_EXTENDER_K8S_BIN):
# throughput ratio, /bind latency, /filter calls per VM pod; its own section of bench/RESULTS.md.
bench-e2e: $(STAMP)
	$(BIN)/python -m bench.e2e $(BENCH_ARGS)

run: $(RUN_STAMP)
	$(BIN)/site-extender serve

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The inner loop: everything but the tests that start processes (marker `process`).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not process"

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
