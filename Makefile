# Two commands on a fresh clone: `make demo` and `make test`. Nothing to install by hand.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml constraints/cpu.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# pip (not uv/poetry): only pip sees the local CPU torch wheel; the constraints file holds
	# pyproject's torch range to it (every extra: `dev` is all of them plus the test tools)
	$(BIN)/pip install -q -c constraints/cpu.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/danlu run recipes/digits.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

bench: $(STAMP)
	@# baseline_*.py are the baselines' servers, started by the benchmarks themselves
	@for b in $$(ls benchmarks/*.py | grep -v /baseline_); do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
