# make demo  - set up .venv and train + evaluate on sample_data/
# make test  - set up .venv and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: all install demo test test-nojit fuzz lint bench clean

all: test lint

DEMO_STAMP := $(VENV)/.installed-package

# the package alone (what `make demo` needs)
$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $(DEMO_STAMP)

# the package and the test stack (scikit-learn, vowpalwabbit, hypothesis, ruff, ...)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP) $(DEMO_STAMP)

install: $(STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/ftrl train sample_data/agaricus.txt.train -m build/demo-model --force --passes 3 --validation sample_data/agaricus.txt.test
	$(BIN)/ftrl eval -m build/demo-model sample_data/agaricus.txt.test
	$(BIN)/ftrl predict -m build/demo-model sample_data/agaricus.txt.test -o build/demo-predictions.txt
	$(BIN)/ftrl export -m build/demo-model -o build/demo-weights.tsv
	@echo "predictions: build/demo-predictions.txt  weights: build/demo-weights.tsv"

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The kernels as plain Python: slow, but coverage tools and debuggers see every line.
test-nojit: $(STAMP)
	NUMBA_DISABLE_JIT=1 $(BIN)/python -m pytest -q tests/test_kernels.py tests/test_readers.py tests/test_float_text.py

# A longer fuzzing run of the readers than the test suite's budget.
fuzz: $(STAMP)
	FTRL_FUZZ_EXAMPLES=20000 $(BIN)/python -m pytest -q tests/test_reader_fuzz.py
	FTRL_FUZZ_EXAMPLES=300 $(BIN)/python -m pytest -q tests/test_modeldir_fuzz.py

lint: $(STAMP)
	$(BIN)/ruff check ftrl_cli tests bench

# (as an installed package runs: with .pyc files, whatever PYTHONDONTWRITEBYTECODE says here)
BENCH_ENV := env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=$(CURDIR)/.bench-cache/pyc

bench: $(STAMP)
	$(BENCH_ENV) $(BIN)/python bench/run_bench.py $(BENCH_ARGS)
	$(BENCH_ENV) $(BIN)/python bench/flights.py $(FLIGHTS_ARGS)
	$(BENCH_ENV) $(BIN)/python bench/model_size.py

# Held-out quality of train, tune and the peers on ../shared/data (minutes; not part of test).
.PHONY: quality
quality: $(STAMP)
	$(BIN)/python bench/quality.py $(QUALITY_ARGS)

clean:
	rm -rf build .pytest_cache
