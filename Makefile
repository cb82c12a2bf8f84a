# The two commands a newcomer needs: `make dev` and `make test`. Everything else is optional.
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:$(PATH)
PY := .venv/bin/python
SAM := .venv-sam/bin/sam
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: setup dev token test unit integration lint typecheck validate build invoke clean

setup:
	@scripts/bootstrap.sh

dev: setup  ## run the whole API locally (embedded S3 + API gateway + validator loop)
	@$(PY) -m local.dev

token: setup  ## print a local JWT for a user: make token SUB=alice
	@$(PY) -m local.dev --token $(or $(SUB),local-user)

test: setup  ## lint, type-check and run every test
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest

unit: setup
	$(PY) -m pytest tests/unit

integration: setup
	$(PY) -m pytest tests/integration

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

clean:
	rm -rf .venv .venv-sam .tools .aws-sam .pytest_cache .mypy_cache .ruff_cache
