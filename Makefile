# Everything installs itself: `make up` and `make test` work on a fresh machine.
PYTHON ?= python3.11
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: up test unit lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

up: $(BIN)/.installed  ## the embedded stack with the demo feed
	$(BIN)/salespulse up

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy events projections services alerts

test: lint  ## unit and integration tests on the real broker, PostgreSQL and Redis
	$(BIN)/pytest -q -p no:cacheprovider

unit: $(BIN)/.installed
	$(BIN)/pytest -q tests/unit

clean:
	rm -rf $(VENV) .salespulse
