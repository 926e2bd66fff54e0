# relata — the two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
PEOPLE ?= 20000

.PHONY: setup demo serve test test-fast lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install relata with its development tools

demo: $(STAMP)  ## generate + import the German demo data set, then start the server
	RELATA_DATABASE_URL=$${RELATA_DATABASE_URL:-sqlite:///demo.db} \
	  $(BIN)/relata demo --people $(PEOPLE) --host $(HOST) --port $(PORT)

serve: $(STAMP)  ## start the API and web UI on the configured database
	$(BIN)/relata serve --host $(HOST) --port $(PORT)

test: $(STAMP)  ## lint, then every test on SQLite and PostgreSQL
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

test-fast: $(STAMP)  ## the tests without the browser
	$(BIN)/pytest -q -m "not e2e"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)  ## the benchmarks in bench/ (not part of the tests)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) demo-data demo.db demo.db-wal demo.db-shm .pytest_cache .ruff_cache
