# leadflow: the commands a newcomer can guess. Everything installs itself on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt layers/leadflow/pyproject.toml | cksum | cut -d' ' -f1)
PORT ?= 8000
# pytest-xdist workers for `make test` (auto: one per CPU; 0 runs the tests in this process).
TEST_WORKERS ?= auto
AUDIT := $(VENV)/audit
AUDIT_STAMP := $(AUDIT)/.installed-$(shell cksum < requirements-audit.txt | cut -d' ' -f1)

.PHONY: dev test test-fast lint audit format schema validate events bench clean browser deploy

# pip's and setuptools' chatter goes to .venv/install.log (shown only when the install fails).
$(STAMP): requirements-dev.txt layers/leadflow/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing the pinned dependencies into $(VENV) (first run: about 2 minutes; log: $(VENV)/install.log)"
	@{ $(BIN)/python -m pip install --upgrade pip && $(BIN)/python -m pip install -r requirements-dev.txt; } \
	  > $(VENV)/install.log 2>&1 || { tail -n 40 $(VENV)/install.log; echo "install failed: see $(VENV)/install.log"; exit 1; }
	@rm -f $(VENV)/.installed-* && touch $@

## dev: start the whole product locally (moto, no Docker, no AWS account), demo workspace loaded
dev: $(STAMP)
	$(BIN)/leadflow dev --port $(PORT)

## test: lint, then every test tier (unit, property, integration, end to end, browser), on every CPU
test: $(STAMP) browser lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

## test-fast: unit and property tests only (no AWS, no browser)
test-fast: $(STAMP)
	$(BIN)/pytest -m unit

## lint: ruff, mypy, import contracts (lint-imports), cfn-lint, workspace validation, then the security audits
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/leadflow/leadflow functions
	$(BIN)/lint-imports
	$(BIN)/cfn-lint template.yaml
	$(BIN)/leadflow validate
	$(MAKE) audit

$(AUDIT_STAMP): requirements-audit.txt
	test -x $(AUDIT)/bin/python || $(PYTHON) -m venv $(AUDIT)
	$(AUDIT)/bin/python -m pip install --quiet -r requirements-audit.txt
	rm -f $(AUDIT)/.installed-* && touch $@

## audit: checkov (template), bandit (code), pip-audit (dependencies; skipped where PyPI is unreachable)
audit: $(STAMP) $(AUDIT_STAMP)
	$(AUDIT)/bin/checkov --quiet --compact --skip-download --framework cloudformation --file template.yaml
	$(AUDIT)/bin/bandit --quiet --recursive layers/leadflow/leadflow functions
	$(AUDIT)/bin/python .ci/dependency_audit.py $(BIN)/python

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## browser: headless Chromium and ChromeDriver from Debian's packages, for the browser tests
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "note: install chromium and chromium-driver to run the browser tests (they are skipped otherwise)"; fi; }

## deploy: build (inside the virtualenv: the workspace layer is compiled by leadflow) and deploy with SAM
deploy: $(STAMP)
	@PATH="$(CURDIR)/$(BIN):$$PATH"; command -v sam >/dev/null || { echo "make deploy needs the AWS SAM CLI (not found on PATH). Install it:"; \
	  echo "  pipx install aws-sam-cli   (or AWS's installer:"; \
	  echo "  https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/install-sam-cli.html)"; \
	  echo "then run make deploy again (README: Deploy to AWS)."; exit 1; }
	PATH="$(CURDIR)/$(BIN):$$PATH" sam build
	PATH="$(CURDIR)/$(BIN):$$PATH" sam deploy --guided

schema: $(STAMP)
	$(BIN)/leadflow schema

validate: $(STAMP)
	$(BIN)/leadflow validate

events: $(STAMP)
	$(BIN)/python events/make_events.py

bench: $(STAMP)
	$(BIN)/python bench/aws_calls_per_submission.py
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/local_stack_load.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis .aws-sam
