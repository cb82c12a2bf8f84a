# The two commands a newcomer needs: `make dev` and `make test`. Everything else is optional.
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:$(PATH)
PY := .venv/bin/python
SAM := .venv-sam/bin/sam
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: setup dev token upload test unit integration lint typecheck validate build invoke bench clean

setup:
	@scripts/bootstrap.sh

# PARAMETERS="Name=Value ..." overrides template Parameters (like sam deploy --parameter-overrides);
# JSON_LOGS=1 prints the functions' JSON logs instead of one line per request and per validation.
dev: setup  ## run the whole API locally (embedded S3 + API gateway + validator loop)
	@$(PY) -m local.dev $(if $(PARAMETERS),--parameter-overrides $(PARAMETERS)) $(if $(JSON_LOGS),--json-logs)

token: setup  ## print a local JWT for a user: make token SUB=alice
	@$(PY) -m local.dev --token $(or $(SUB),local-user) $(if $(PARAMETERS),--parameter-overrides $(PARAMETERS))

# The CLI against the running local stack, as $(or $(SUB),local-user) (a token is made unless UPLOAD_API_TOKEN is set):
#   make upload FILE=photo.png [SUB=alice] [ARGS="--part-size 16MiB"]   (CMD=resume|ls|abort|import for the others)
# GNU make exits 2 whenever a recipe fails, so the client's own exit code is printed on the way out.
upload: setup  ## upload a file to the running local stack with the CLI: make upload FILE=photo.png [SUB=alice] [ARGS=...]
	@export UPLOAD_API_URL="$${UPLOAD_API_URL:-http://127.0.0.1:$${API_PORT:-3000}}" \
		UPLOAD_CLI_MAKE='make upload$(if $(SUB), SUB=$(SUB))$(if $(filter command line,$(origin API_PORT)), API_PORT=$(API_PORT))'; \
	if [ -z "$${UPLOAD_API_TOKEN:-}" ]; then \
		UPLOAD_API_TOKEN="$$($(PY) -m local.dev --token $(or $(SUB),local-user))" || exit $$?; export UPLOAD_API_TOKEN; \
	fi; \
	status=0; $(PY) -m client $(or $(CMD),put) $(FILE) $(ARGS) || status=$$?; \
	if [ $$status -ne 0 ]; then echo "make upload: the client exited with $$status (exit codes: docs/client.md)" >&2; fi; \
	exit $$status

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
	$(PY) -m bench.put_many --write
	$(PY) -m bench.control_plane --write
	$(PY) -m bench.cold_start --write
	$(PY) -m bench.import_vs_naive --write
	PYTHONPATH=layers/core $(PY) -m bench.import_memory --write
	PYTHONPATH=layers/core $(PY) -m bench.validator_bytes --write
	$(PY) -m bench.cost --write
	$(PY) -m bench.load --write

clean:
	rm -rf .venv .venv-sam .tools .aws-sam .pytest_cache .mypy_cache .ruff_cache local/demo/node_modules
