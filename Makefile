# Two commands do everything: `make demo` and `make test` (see README.md).
SHELL := bash
.SHELLFLAGS := -eo pipefail -c

PYTHON ?= python3
VENV ?= .venv
# Torch goes in first and on its own: the default is the CPU wheel; pass e.g.
# TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126" for a CUDA build.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
# pip prints one warning per package for the empty local index mirrors of some machines
PIPQUIET := { grep -v "is ignored: it is neither a file nor a directory" || true; }

# Real GLUE and CoT data beside the checkout, when present (CI has them); absolute paths, so
# notebooks and tests that run from other folders find them too.
GLUE_DIR ?= $(abspath $(firstword $(wildcard ../shared/data/glue)))
COT_DIR ?= $(abspath $(firstword $(wildcard ../shared/data/cot)))
export CMI_TOOLKIT_GLUE_DIR ?= $(GLUE_DIR)
export CMI_TOOLKIT_COT_DIR ?= $(COT_DIR)
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: setup git-filters demo test check lint lab lab-cache bench clean browser-deps data-dirs notebooks-sync readme figures course cot-verdict

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q $(TORCH_SPEC) 2>&1 | $(PIPQUIET)
	$(BIN)/python -m pip install -q -e ".[notebooks,dev,cluster]" 2>&1 | $(PIPQUIET)
	$(BIN)/python -c "import torch, transformers, cmi_toolkit; print('torch', torch.__version__, '| transformers', transformers.__version__)"
	touch $@

# A notebook saved in JupyterLab keeps its outputs, execution counts and the kernel's version fields; this clone's
# git reads notebooks through nbstripout (.gitattributes) with the flags below, so running the course leaves
# `git status` clean. Jupytext's twins carry cells and tags only (notebooks/jupytext.toml).
NBSTRIPOUT_FLAGS := --keep-id --extra-keys 'metadata.language_info'

git-filters: $(VENV)/.installed
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  git config filter.nbstripout.clean "'$(abspath $(BIN))/python' -m nbstripout $(NBSTRIPOUT_FLAGS)"; \
	  git config filter.nbstripout.smudge cat; \
	  git config diff.ipynb.textconv "'$(abspath $(BIN))/python' -m nbstripout -t $(NBSTRIPOUT_FLAGS)"; \
	  echo "git reads notebooks without their outputs (nbstripout filter set in .git/config)"; fi

setup: $(VENV)/.installed git-filters

demo: setup
	$(BIN)/cmi-toolkit demo

lint: setup
	$(BIN)/ruff check cmi_toolkit tests benchmarks

# every test, on two workers (tests that share Ray, gloo or the browser run in one of them), the 15 slowest listed
PYTEST_WORKERS ?= 2
test: setup lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup --durations=15 $(PYTEST_ARGS)

# the inner loop: the layers, the method, statistics, exercises, tasks, data, models and the CLI's one-line errors
# (about a minute on 2 cores); CHECK_TESTS= (empty) takes every test not marked slow, notebook, browser, ray, distributed
CHECK_TESTS ?= tests/test_layers.py tests/test_information.py tests/test_losses.py tests/test_markov.py \
  tests/test_fpdc.py tests/test_statistics.py tests/test_exercises.py tests/test_tasks.py tests/test_data.py \
  tests/test_models.py tests/test_cli_errors.py
check: setup lint
	$(BIN)/python -m pytest -m "not slow and not notebook and not browser and not ray and not distributed" \
	  -n $(PYTEST_WORKERS) --dist loadgroup $(CHECK_TESTS) $(PYTEST_ARGS)

# Debian's Chromium for the browser test and PNG figures (needs root; a browser download is not needed)
browser-deps:
	@if command -v chromium >/dev/null; then echo "chromium present"; \
	else apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi

lab: setup
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root,) notebooks

# the lab's cached runs (results/lab): trains what is missing, about a minute per model on a laptop CPU
# (LAB_ARGS="--engine ray" fans them out over a local Ray, or the cluster at $$RAY_ADDRESS)
lab-cache: setup
	$(BIN)/cmi-toolkit lab-cache $(LAB_ARGS)

bench: setup
	$(BIN)/python benchmarks/bench_cmi_step.py
	$(BIN)/python benchmarks/bench_measure.py
	$(BIN)/python benchmarks/bench_throughput.py
	$(BIN)/python benchmarks/bench_cpu_variants.py
	$(BIN)/python benchmarks/bench_fanout.py

# each notebook is paired with a py:percent twin (notebooks/jupytext.toml); edit either, then sync
notebooks-sync: setup
	cd notebooks && ../$(BIN)/jupytext --sync 0*.ipynb && ../$(BIN)/nbstripout $(NBSTRIPOUT_FLAGS) 0*.ipynb

# the README's committed course figures (figures/): notebooks 00, 01, 02, 03 and 06 run headless in their default
# mode with figures_dir=../figures (a notebook run otherwise writes its figures under its untracked output folder);
# executed copies go to notebooks/outputs/executed/. 02 trains a model live: about 20 minutes in all on 2 cores
FIGURE_NOTEBOOKS ?= 00_markov_source_view 01_finetune_with_cmi 02_measure_cmi 03_centroids_and_clusters 06_reproduce_glue
figures: setup
	mkdir -p notebooks/outputs/executed
	cd notebooks && for nb in $(FIGURE_NOTEBOOKS); do \
	  ../$(BIN)/papermill --cwd . -k python3 --no-progress-bar $$nb.ipynb outputs/executed/$$nb.ipynb -p figures_dir ../figures; \
	done

# the course readable with its outputs: every module executed headless in its default mode, then rendered to
# docs/course/index.html (static HTML, PNG figures; committed, linked from the README). Like `make figures` it
# rewrites tracked files on purpose. COURSE_ARGS="-p smoke True" COURSE_OUT=notebooks/outputs/course is a quick
# pipeline check that leaves the committed copy alone.
COURSE_NOTEBOOKS ?= $(basename $(notdir $(wildcard notebooks/[0-9][0-9]_*.ipynb)))
COURSE_OUT ?= docs/course
course: setup
	mkdir -p notebooks/outputs/executed
	cd notebooks && for nb in $(COURSE_NOTEBOOKS); do \
	  ../$(BIN)/papermill --cwd . -k python3 --no-progress-bar $$nb.ipynb outputs/executed/$$nb.ipynb $(COURSE_ARGS); \
	done
	$(BIN)/cmi-toolkit course --executed notebooks/outputs/executed --out $(COURSE_OUT)

# the chain-of-thought verdict suite (configs/cot_verdict): every planned run not yet recorded, then its report. Two
# 1-thread processes side by side use a 2-core CPU best: `make cot-verdict COT_THREADS=1 &` twice
COT_THREADS ?= 2
cot-verdict: setup
	OMP_NUM_THREADS=$(COT_THREADS) $(BIN)/cmi-toolkit cot --suite cot_verdict

# the README's result tables, regenerated from the records
readme: setup
	$(BIN)/cmi-toolkit readme

# the data folders the other targets export (a test checks they are absolute)
data-dirs:
	@echo "CMI_TOOLKIT_GLUE_DIR=$(CMI_TOOLKIT_GLUE_DIR)"
	@echo "CMI_TOOLKIT_COT_DIR=$(CMI_TOOLKIT_COT_DIR)"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
