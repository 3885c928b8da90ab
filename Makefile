# Everything installs itself: `make up` and `make test` work on a fresh machine.
PYTHON ?= python3.11
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: up test unit lint clean dashboard deps chaos bench-query

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

up: $(BIN)/.installed dashboard  ## the embedded stack with the demo feed
	$(BIN)/salespulse up

# The dashboard's chart library, from the npm registry (pinned by dashboard/package-lock.json).
ECHARTS = services/api/dashboard/vendor/echarts.min.js
dashboard: $(ECHARTS)
$(ECHARTS): dashboard/package.json dashboard/package-lock.json
	cd dashboard && npm ci --no-audit --no-fund
	mkdir -p $(@D) && cp dashboard/node_modules/echarts/dist/echarts.min.js $@

# Debian's chromium (Playwright's own download fails here) and a CJK font for the dashboard's
# browser tests and zh-CN screenshots.
deps:
	command -v chromium >/dev/null && fc-list :lang=zh | grep -q . || \
		apt-get install -y chromium fonts-wqy-microhei || \
		(apt-get update && apt-get install -y chromium fonts-wqy-microhei)
	@# A compose client validates docker-compose.yml in the tests (no engine needed for that).
	command -v docker-compose >/dev/null || apt-get install -y -q docker-compose || \
		echo "no compose client: docker-compose.yml is checked structurally only"

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy events projections services alerts salespulse_client bench
	$(BIN)/lint-imports  # the direction of dependencies: [tool.importlinter] in pyproject.toml

# Workers (pytest-xdist): integration tests mostly wait on their stack's processes. Each
# worker has its own broker, each stack its own schema, Redis prefix and topics. loadfile
# keeps a module's tests in one worker (a module's shared stack starts once); each worker
# that reads the loaded year loads its own (loadgroup would share one year, but pytest
# 9.2's node ids break it silently: pytest-xdist#1386). 2 on a shared 2-core box (4 had
# failures at a load average of 20-38); raise it where the cores are free.
TEST_WORKERS ?= 2
UNIT_WORKERS ?= 2

test: lint dashboard deps  ## unit and integration tests on the real broker, PostgreSQL and Redis
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

# The inner loop: the same tests and assertions over fewer generated examples and smaller
# inputs (tests/depth.py); `make test` runs them at full depth.
unit: $(BIN)/.installed  ## the unit tests alone: pure logic, no services
	SALESPULSE_TEST_DEPTH=quick $(BIN)/pytest -q -p no:cacheprovider -n $(UNIT_WORKERS) tests/unit

# Faults (docs/FAULTS.md): processes killed at seeded points while history streams in, and
# the broker stopped and restarted. CHAOS_SEED picks the history and the kill points.
CHAOS_SEED ?= 7
chaos: $(BIN)/.installed
	CHAOS_SEED=$(CHAOS_SEED) $(BIN)/pytest -q -s -p no:cacheprovider \
		tests/integration/test_chaos.py tests/integration/test_broker_outage.py

bench-query: $(BIN)/.installed  ## query latency and memory at 10k and 100k deals
	mkdir -p .salespulse && $(BIN)/salespulse-bench query --json .salespulse/bench-query.json --write-docs

clean:
	rm -rf $(VENV) .salespulse dashboard/node_modules $(ECHARTS)
