# The two front-door commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint format bench bench-tasks clean browser

# The package and what it needs to run (all the demo needs), then the tools of the tests, lint
# and benchmarks (pytest, hypothesis, ruff, onnx, onnxruntime, onnxscript, keras, scikit-learn,
# openvino) into the same .venv.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(DEV_STAMP)

# The seeds' IMDB model (Keras's Embedding -> GRU(32) -> Dense) on the sample in the package.
demo: $(STAMP)
	$(BIN)/gru train sentiment --preset seed

# The HTML reports are tested in a real browser: Debian's chromium, installed here when missing
# (as root, or through sudo). GRU_REQUIRE_BROWSER makes those tests fail instead of skipping.
# Two pytest workers, each taking whole files (a file's tests run in order in one process): on
# two cores the suite's compiles and single-threaded tests overlap (~11 min instead of ~16).
test: $(DEV_STAMP) lint browser
	GRU_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -n 2 --dist loadfile

browser:
	@command -v chromium >/dev/null 2>&1 || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -q && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; }

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

format: $(DEV_STAMP)
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/bench_layer.py

# Every task on its full real data (../shared/data); ARGS="--task forecast" picks one.
bench-tasks: $(DEV_STAMP)
	$(BIN)/python benchmarks/bench_tasks.py $(ARGS)

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache
