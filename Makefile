# jobq: the README's verbs. Every target installs what it needs into .venv by itself.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
UV_VERSION := 0.13.8

.PHONY: help venv build test lint fmt typecheck cfn-lint checkov pytest unit integration e2e test-localstack test-ministack test-emulators test-aws deploy-rehearsal run bench bench-emulators bench-listing cost coldstart coldstart-package coldstart-steps chaos chromium screenshot dlq-list dlq-redrive events lock botocore-data clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements/dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "jobq needs Python 3.11 or newer (set PYTHON=python3.x)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	@$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements/dev.txt
	@$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP) ## create .venv with the pinned dependencies

test: lint typecheck cfn-lint checkov pytest ## everything CI runs: lint, types, template lint and scan, all test tiers

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP) ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP) ## mypy --strict on functions/ and infra/
	$(BIN)/mypy

cfn-lint: $(STAMP) ## lint template.yaml (errors, warnings and informational findings all fail)
	$(BIN)/cfn-lint template.yaml

checkov: $(STAMP) ## security scan of template.yaml: every finding fixed, or skipped in the template with a reason
	@$(BIN)/checkov -f template.yaml --framework cloudformation --compact > .checkov.out 2> .checkov.err; \
	  status=$$?; grep -E 'checks:|FAILED' .checkov.out; \
	  if [ $$status -ne 0 ] || grep -q 'Parsing errors' .checkov.out || ! grep -q 'Passed checks: [1-9]' .checkov.out; then \
	    cat .checkov.err >&2; echo "checkov: template.yaml has findings (or could not be read)" >&2; exit 1; fi

CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	@echo "installing Debian's chromium (the dashboard's browser test drives it headless)"
	@SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null; }
	@test -x $(CHROMIUM)

chromium: $(CHROMIUM) ## Debian's headless Chromium for the dashboard's browser test (apt-get, when missing)

# The tiers of make test run on the embedded moto whatever endpoint the shell points at (the emulator tiers below
# choose theirs).
ON_MOTO := env -u AWS_ENDPOINT_URL -u AWS_ENDPOINT_URL_SQS -u AWS_ENDPOINT_URL_DYNAMODB -u AWS_ENDPOINT_URL_STS

pytest: $(STAMP) $(CHROMIUM) ## unit, integration and end-to-end tests
	$(ON_MOTO) $(BIN)/pytest -q

unit: $(STAMP)
	$(ON_MOTO) $(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(ON_MOTO) $(BIN)/pytest -q tests/integration

e2e: $(STAMP) $(CHROMIUM)
	$(ON_MOTO) $(BIN)/pytest -q tests/e2e

test-localstack: $(STAMP) ## the e2e scenarios against LocalStack, and DynamoDB Local beside its SQS (root, a JDK, npm)
	$(BIN)/python -m emulators test localstack dynamodb-local

test-ministack: $(STAMP) ## the e2e scenarios against MiniStack (needs a Python 3.13, e.g. pyenv's)
	$(BIN)/python -m emulators test ministack

test-emulators: $(STAMP) ## the e2e scenarios against every backend in turn: moto, LocalStack, DynamoDB Local, MiniStack
	$(BIN)/python -m emulators test all

test-aws: $(STAMP) ## the e2e scenarios against a deployed stack: JOBQ_STACK=name make test-aws (the pre-release check)
	JOBQ_E2E_BACKEND=aws $(BIN)/pytest -q -rs -m scenario tests/e2e

build: $(STAMP) ## sam build into .aws-sam/build, then bytecode for every function (Lambda never writes it; ARGS= more sam build options)
	$(BIN)/python -m emulators.build $(ARGS)

deploy-rehearsal: $(STAMP) ## sam build + sam deploy on MiniStack, then jobs through the deployed functions (ARGS=--no-schedule)
	$(BIN)/python -m emulators.rehearsal $(ARGS)

run: $(STAMP) ## run the whole system locally (embedded emulator, API on http://127.0.0.1:3000)
	$(BIN)/jobq-local $(ARGS)

bench: $(STAMP) ## throughput and latency of echo jobs through the local runtime (ARGS=--endpoint URL: on an emulator)
	$(BIN)/python -m bench.local_runtime $(ARGS)

bench-emulators: $(STAMP) ## make bench on moto, LocalStack, DynamoDB Local and MiniStack, side by side (ARGS: bench's)
	$(BIN)/python -m emulators bench all $(if $(ARGS),-- $(ARGS))

cost: $(STAMP) ## cost per million echo jobs at us-east-1 list prices, single and batch submit, from two bench runs
	$(BIN)/python -m bench.cost $(ARGS)

bench-listing: $(STAMP) ## GET /jobs?status=failed among 20,000 succeeded jobs: the reads it makes
	$(BIN)/python -m bench.listing $(ARGS)

coldstart: $(STAMP) ## cold init of each function vs a bare boto3 function with the same clients (median of paired fresh processes)
	$(BIN)/python -m bench.coldstart $(ARGS)

coldstart-steps: $(STAMP) ## where each function's cold init goes: its libraries, jobq, the first invocation's build, step by step
	$(BIN)/python -m bench.init_steps $(ARGS)

coldstart-package: $(STAMP) ## cold init from a deployment package on Python 3.13: sam build's (no bytecode) vs make build's
	$(BIN)/python -m bench.package_init $(ARGS)

screenshot: $(STAMP) $(CHROMIUM) ## docs/dashboard.png: the dashboard over a local runtime with a few jobs, in headless Chromium
	$(BIN)/python -m tests.support.screenshot docs/dashboard.png

chaos: $(STAMP) ## fault-injection run: JOBS jobs (default 10000, about a third of operations faulted)
	$(BIN)/python -m tests.support.chaos --jobs $(or $(JOBS),10000) --seed $(or $(SEED),7)

dlq-list: $(STAMP) ## list the local runtime's dead-letter queue and its jobs (jobq --local dlq list)
	$(BIN)/jobq --local dlq list

dlq-redrive: $(STAMP) ## re-queue dead-lettered jobs of the local runtime (JOB=<id> for one)
	$(BIN)/jobq --local dlq redrive $(if $(JOB),--job $(JOB))

lock: $(STAMP) ## re-pin requirements/dev.txt and functions/requirements.txt from pyproject.toml
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev --python-version 3.11 -o requirements/dev.txt
	$(BIN)/uv pip compile --quiet pyproject.toml --extra tracing --python-version 3.13 \
	  --python-platform aarch64-unknown-linux-gnu -o functions/requirements.txt

botocore-data: $(STAMP) ## rewrite the functions' trimmed botocore endpoints.json from the installed botocore (after make lock moves it)
	$(BIN)/python -m emulators.botocore_data

events: $(STAMP) ## regenerate infra/events/ with the SAM CLI (pinned in requirements/sam.txt, built into .venv-sam)
	@$(BIN)/python -m emulators.sam --version
	SAM_CLI_TELEMETRY=0 .venv-sam/bin/sam local generate-event apigateway http-api-proxy > infra/events/http-api-proxy.json
	SAM_CLI_TELEMETRY=0 .venv-sam/bin/sam local generate-event sqs receive-message > infra/events/sqs-receive-message.json
	SAM_CLI_TELEMETRY=0 .venv-sam/bin/sam local generate-event cloudwatch scheduled-event > infra/events/scheduled-event.json

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .checkov.out .checkov.err
