# vgot: one-command set-up. `make demo` runs a full generation on the tiny preset; `make test` runs the tests.
# Override TORCH for a CUDA build, e.g.  make install TORCH="torch --index-url https://download.pytorch.org/whl/cu124"
SHELL   := /bin/bash
PYTHON  ?= python3
VENV    ?= .venv
TORCH   ?= torch==2.13.0
RUN_DIR ?= runs/demo
STORIES ?= data/stories
BIN     := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export VGOT_HOME ?= $(CURDIR)/.vgot_home
export PYTHONHASHSEED := 0
STAMP   := $(VENV)/.vgot-installed

.PHONY: install demo test test-fast test-slow test-all pytest-slow export check-export nbtest pytest pytest-fast batch bench lab clean readme world mutants

install: $(STAMP)

$(STAMP): requirements.txt constraints.txt setup.py settings.ini
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip freeze | grep -i '^torch==' > $(VENV)/torch-constraint.txt
	$(BIN)/python -m pip install -q -c $(VENV)/torch-constraint.txt -c constraints.txt -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	@if git rev-parse --git-dir >/dev/null 2>&1; then git config --local include.path ../.gitconfig; fi
	@touch $(STAMP)
	@echo "vgot installed in $(VENV)"

demo: install
	$(BIN)/vgot demo --run-dir $(RUN_DIR)

# vgot/ must be exactly what nbdev_export makes from the notebooks.
check-export: install
	@rm -rf $(VENV)/vgot-before && cp -r vgot $(VENV)/vgot-before
	@$(BIN)/nbdev_export
	@if ! diff -r -u -x __pycache__ $(VENV)/vgot-before vgot | head -60; then :; fi
	@if ! diff -r -q -x __pycache__ $(VENV)/vgot-before vgot >/dev/null; then \
	  echo "vgot/ differs from what nbdev_export makes from nbs/: edit the notebooks, run 'make export', commit both."; \
	  rm -rf vgot && mv $(VENV)/vgot-before vgot; exit 1; fi
	@rm -rf $(VENV)/vgot-before
	@$(BIN)/python tools/sync_resources.py --check
	@echo "vgot/ matches the notebooks"

export: install
	$(BIN)/nbdev_export
	$(BIN)/python tools/sync_resources.py

nbtest: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2 --timing

pytest: install
	$(BIN)/python -m pytest -q -m "not slow" tests/

# the slow suites (tests/conftest.py SLOW_FILES: whole runs killed and resumed, Ray, the browser, real architectures,
# the world's measurements; about half an hour on 2 cores). CI runs `make test` and then these.
pytest-slow: install browser-deps
	$(BIN)/python -m pytest -q -m slow tests/

# `make test`: the notebooks, the export check and every test not marked slow (under 20 minutes on 2 cores)
test: check-export nbtest pytest

test-slow: pytest-slow

test-all: test test-slow

# the inner loop: `make test` without the packaging and bad-input corpus suites
pytest-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not real_size" --ignore=tests/test_packaging.py --ignore=tests/test_corpus.py tests/

test-fast: check-export nbtest pytest-fast

# Mutation check (not part of `make test`): breaks one piece of the method at a time in a temporary copy of vgot/
# (the decoupled branch, the camera input, the last-frame condition, the GP order, the warp, the keyframe in the I2V
# call, the latent condition of a continued shot), runs the tests that guard it, and ends with `N/M mutations caught`. tools/mutants.py lists them.
mutants: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python tools/mutants.py

batch: install
	$(BIN)/vgot batch $(STORIES) --preset tiny --out runs

# CPU benchmarks (about 15 minutes on 2 cores): each warms up, reports medians and writes (replaces) its own dated
# section of bench/RESULTS.md. bench/gpu.py needs a GPU and is not among them: `make bench-gpu` (GPU_ARGS="--only wan").
bench: install
	@for b in bench/bench_*.py; do echo "== $$b"; t=$$(date +%s); \
	  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python $$b || exit 1; echo "== $$b: $$(( $$(date +%s) - t )) s"; done

.PHONY: bench-gpu
bench-gpu: install
	$(BIN)/python bench/gpu.py $(GPU_ARGS)

# The world preset's models (vgot.world, nbs/09_world.ipynb): seeded, resumable stages with checkpoints in WORLD_DIR
# (run it again to continue after a stop), then the weights, training.json and loss_curves.png into
# vgot/resources/world/ (package data). About an hour and a half of one core; run it in the background:
#   nohup make world > world.log 2>&1 &
WORLD_DIR ?= world_train
world: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -c "import sys; from vgot.world import train_world; \
	  train_world(sys.argv[1], out=sys.argv[2])" $(WORLD_DIR) vgot/resources/world

lab: install
	$(BIN)/jupyter lab nbs/

clean:
	rm -rf runs/demo _docs _proc .pytest_cache

readme: install
	$(PYTHON) tools/readme_to_index.py && $(BIN)/nbdev_clean --fname nbs/index.ipynb

# --- docs ------------------------------------------------------------------------------------------------------------
# System packages for the docs preview (Debian's MathJax) and the browser tests (Debian's Chromium); playwright comes
# with `make install` (requirements.txt). Quick when they are there; apt-get update first, for fresh machines.
# apt runs its downloads and signature checks as the user _apt; where /dev/null is not writable by others (some
# container images), that sandbox fails ("cannot create /dev/null", "gpgv ... required") and apt-get update exits 100:
# there apt keeps root for them.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_SANDBOX := $(shell stat -c %a /dev/null 2>/dev/null | grep -q '6$$' || echo "-o APT::Sandbox::User=root")
APT_GET := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get $(APT_SANDBOX)

docs-deps:
	@test -f /usr/share/javascript/mathjax/MathJax.js || { $(APT_GET) update -qq && $(APT_GET) install -y -qq --no-install-recommends libjs-mathjax; }

browser-deps: install docs-deps
	@test -x /usr/bin/chromium || { $(APT_GET) update -qq && $(APT_GET) install -y -qq --no-install-recommends chromium fonts-dejavu-core; }
	@$(BIN)/python -c "import playwright.sync_api" || { echo "playwright is missing from $(VENV): run make install"; exit 1; }

# With Quarto: the site users publish (nbdev_docs -> _docs/). Without it: the offline preview of the same processed
# notebooks (tools/build_docs.py -> _preview/; nothing is installed into the environment). Both need the notebooks to
# pass nbdev's processing; the preview is written either way and its problems are listed.
docs: install docs-deps
	@if command -v quarto >/dev/null 2>&1; then $(BIN)/nbdev_docs; \
	else echo "Quarto is not on PATH: building the offline preview into _preview/"; OMP_NUM_THREADS=1 $(BIN)/python tools/build_docs.py --out _preview; fi
