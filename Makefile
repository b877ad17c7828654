# leadflow: the commands a newcomer can guess. Everything installs itself on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt layers/leadflow/pyproject.toml | cksum | cut -d' ' -f1)
PORT ?= 8000

.PHONY: dev test test-fast lint format schema validate events bench clean browser deploy

$(STAMP): requirements-dev.txt layers/leadflow/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

## dev: start the whole product locally (moto, no Docker, no AWS account), demo workspace loaded
dev: $(STAMP)
	$(BIN)/leadflow dev --port $(PORT)

## test: lint, then every test tier (unit, property, integration, end to end, browser)
test: $(STAMP) browser lint
	$(BIN)/pytest

## test-fast: unit and property tests only (no AWS, no browser)
test-fast: $(STAMP)
	$(BIN)/pytest -m unit

## lint: ruff, mypy, cfn-lint, workspace validation
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/leadflow/leadflow functions
	$(BIN)/cfn-lint template.yaml
	$(BIN)/leadflow validate

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
	PATH="$(CURDIR)/$(BIN):$$PATH" sam build
	sam deploy --guided

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
