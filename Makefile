# The two commands of the README: `make up` starts the stack, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_PY := $(VENV)/.installed
STAMP_NODE := node_modules/.installed

.PHONY: up test deps package unit integration e2e lint bench bench-twin bench-chain bench-csv bench-pipeline bench-signatures bench-hostile-csv bench-journal bench-verify bench-index-projections capacity fuzz contracts check-contracts clean

deps: $(STAMP_PY) $(STAMP_NODE)

# requirements.txt is what the Lambda functions import (Chalice packages it); requirements-dev.txt
# adds the tests, emulators and tools, and is what a machine installs.
$(STAMP_PY): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(STAMP_NODE): package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

up: deps  ## STACK=localstack to use a running LocalStack instead of moto
	$(PY) -m infra.stack up

test: deps
	sh tests/e2e/install_chromium.sh
	$(PY) -m pytest tests

# The AWS deployment: chalice package --stage aws with a trimmed dependency layer, into
# .stack/package/ (sam.json, deployment.zip, layer-deployment.zip); prints each function's unzipped
# size with its layers against Lambda's 250 MB, lints the templates and runs the app from the package.
AWS_DEFAULT_REGION ?= us-east-1
package: deps
	AWS_DEFAULT_REGION=$(AWS_DEFAULT_REGION) $(PY) -m infra.package .stack/package

unit: deps
	$(PY) -m pytest tests/unit

integration: deps
	$(PY) -m pytest tests/integration

e2e: deps
	sh tests/e2e/install_chromium.sh
	$(PY) -m pytest tests/e2e

fuzz: deps  ## schemathesis over every operation and the hostile corpus, on a stack of their own
	DREC_FUZZ_EXAMPLES=8 $(PY) -m pytest -s tests/unit/test_openapi_document.py tests/e2e/test_fuzz_stack.py

lint: deps  ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy chalicelib infra app.py

contracts: deps
	node contracts/compile.js

check-contracts: deps
	node contracts/compile.js --check

bench: bench-twin bench-chain bench-csv bench-pipeline bench-signatures bench-hostile-csv bench-journal bench-verify

BENCH_DATA := .stack/bench-data
PVLIB_HELD_OUT := $(BENCH_DATA)/pvlib-0.9.5-py3-none-any.whl

# Held-out weather for bench-twin: real files shipped in the pvlib 0.9.5 wheel, fetched once
# (the bench checks its sha256 and reads only the weather files out of it).
$(PVLIB_HELD_OUT): | $(STAMP_PY)
	mkdir -p $(BENCH_DATA)
	$(PY) -m pip download pvlib==0.9.5 --no-deps --only-binary :all: -d $(BENCH_DATA)

bench-twin: deps $(PVLIB_HELD_OUT)
	$(PY) -m tests.bench.bench_twin

bench-chain: deps
	$(PY) -m tests.bench.bench_chain

bench-csv: deps
	$(PY) -m tests.bench.bench_csv

# Long (the previous release alone takes ~15 min): this release on empty tables and with 1,000,000
# readings stored, the previous release (BASELINE=none skips it), stage shares, usage and AWS cost.
# A quick look: make bench-pipeline BENCH_PIPELINE_ARGS="--devices 100 --preload 0 --baseline none"
BASELINE ?= ec401e1
bench-pipeline: deps
	$(PY) -m tests.bench.bench_pipeline --baseline $(BASELINE) $(BENCH_PIPELINE_ARGS)

# Hot partitions at 10,000,000 devices, from the units per key bench-pipeline measured (or the kept run).
capacity: deps
	$(PY) -m tests.bench.capacity_model $(CAPACITY_ARGS)

# Write units of one reading's life in each readings index, ALL against the projections declared.
bench-index-projections: deps
	$(PY) -m tests.bench.bench_index_projections

bench-signatures: deps
	$(PY) -m tests.bench.bench_signatures

bench-hostile-csv: deps
	$(PY) -m tests.bench.bench_hostile_csv

bench-journal: deps
	$(PY) -m tests.bench.bench_journal

bench-verify: deps
	$(PY) -m tests.bench.bench_verify

clean:
	rm -rf .stack
