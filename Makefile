# The two commands a newcomer needs: `make dev` and `make test`. Everything else is optional.
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:$(PATH)
PY := .venv/bin/python
SAM := .venv-sam/bin/sam
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: setup dev token upload test unit integration lint typecheck validate build invoke bench clean

setup:
	@scripts/bootstrap.sh

dev: setup  ## run the whole API locally (embedded S3 + API gateway + validator loop)
	@$(PY) -m local.dev

token: setup  ## print a local JWT for a user: make token SUB=alice
	@$(PY) -m local.dev --token $(or $(SUB),local-user)

upload: setup  ## upload a file to the running local stack with the CLI: make upload FILE=photo.png [SUB=alice]
	@UPLOAD_API_URL=$${UPLOAD_API_URL:-http://127.0.0.1:$${API_PORT:-3000}} \
	UPLOAD_API_TOKEN=$${UPLOAD_API_TOKEN:-$$($(PY) -m local.dev --token $(or $(SUB),local-user))} \
	$(PY) -m client put $(FILE)

# The browser test needs Debian's Chromium: the setup installs it (as root) for `make test`.
test: export WITH_BROWSER := 1
test: setup  ## lint, type-check and run every test
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest

unit: setup
	$(PY) -m pytest tests/unit

integration: setup
	$(PY) -m pytest tests/integration

.PHONY: infrastructure
infrastructure: setup  ## sam validate, sam build and cfn-lint on the translated template (slow)
	$(PY) -m pytest tests/infrastructure

e2e: export WITH_BROWSER := 1
e2e: setup  ## the demo page driven in headless Chromium
	$(PY) -m pytest tests/e2e

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: setup
	$(PY) -m mypy

validate: setup  ## sam validate --lint
	$(SAM) validate --lint

build: setup  ## sam build (needs python3.13 on PATH: setup provides it)
	$(SAM) build

invoke: setup  ## run one function on one event without Docker: make invoke FUNCTION=UploadsFunction EVENT=events/uploads-create.json
	@$(PY) -m local.invoke $(FUNCTION) $(EVENT)

bench: setup  ## every benchmark, figures written into BENCHMARKS.md (about 15 minutes; bench/README.md)
	$(PY) -m bench.throughput --write
	$(PY) -m bench.control_plane --write
	$(PY) -m bench.cold_start --write
	$(PY) -m bench.import_vs_naive --write
	PYTHONPATH=layers/core $(PY) -m bench.import_memory --write
	PYTHONPATH=layers/core $(PY) -m bench.validator_bytes --write

clean:
	rm -rf .venv .venv-sam .tools .aws-sam .pytest_cache .mypy_cache .ruff_cache local/demo/node_modules
