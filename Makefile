# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CLI := $(BIN)/asgl-pipeline
STAMP := $(VENV)/.installed
PROFILE ?= demo
DATA ?= cache/synthetic
CACHE ?= cache/skeletons/synthetic.h5
RUN ?= asgl-demo
RUNS := cache/runs
RUN_METRICS = $(RUNS)/$(RUN)/metrics.json
# The Makefile's synthetic default is built on first use (its summary is written last, so it exists
# only for a finished set); any other DATA is the user's own dataset and is never generated.
SYNTH_DEFAULT := cache/synthetic
DATA_READY = $(if $(filter $(SYNTH_DEFAULT),$(DATA)),$(DATA)/synth_summary.json)
# `make train RESUME=1` continues an interrupted run instead of refusing to overwrite it.
RESUME_FLAG := $(if $(RESUME),--resume,)

# `make benchmark`: the benchmark-size synthetic set, every Table 3–5 variant and the report.
BENCH_DATA ?= cache/synthetic-benchmark
BENCH_CACHE ?= cache/skeletons/synthetic-benchmark.h5
BENCH_RUN ?= asgl-benchmark
# `make benchmark-control`: the same set, splits and recipe on the set's ground-truth skeletons.
BENCH_GT_CACHE ?= cache/skeletons/synthetic-benchmark-groundtruth.h5
# On a CUDA host the same target trains at the paper's input size (256×128).
BENCH_SIZE = $(shell $(BIN)/python -c "import torch; print('--set train.height=256 --set train.width=128' if torch.cuda.is_available() else '')" 2>/dev/null)

.PHONY: install demo benchmark benchmark-control pose-error ucalgary synth preprocess train evaluate report ablate bench gpu-check test lint mutation clean

install: $(STAMP)

# torch is installed first, pinned, so pip takes the local CPU build instead of a CUDA stack.
$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[test]"
	# mediapipe needs opencv-contrib-python; an older install also has opencv-python, a second
	# copy of the same cv2 files: remove it, then restore the files the two shared.
	if $(BIN)/pip show --quiet opencv-python >/dev/null 2>&1; then \
	  $(BIN)/pip uninstall --quiet --disable-pip-version-check -y opencv-python && \
	  $(BIN)/pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
	    "$$($(BIN)/pip show opencv-contrib-python | sed -n 's/^Version: /opencv-contrib-python==/p')"; \
	fi
	touch $(STAMP)

# The demo always starts from a fresh run folder so that it can be repeated; the synthetic set and
# its skeleton cache are regenerated identically (same seed) and finished tracklets are reused.
demo: install
	$(CLI) synth --profile $(PROFILE) --out $(DATA) --overwrite
	$(CLI) preprocess --profile $(PROFILE) --root $(DATA) --cache $(CACHE)
	rm -rf $(RUNS)/$(RUN)
	$(CLI) train --profile $(PROFILE) --root $(DATA) --cache $(CACHE) --run $(RUN)
	$(CLI) report --profile $(PROFILE)

# Finished steps are reused: the set when its summary exists, cached skeletons, finished variants
# (delete $(RUNS)/$(BENCH_RUN)* to retrain). The last line is the wall time of this invocation.
benchmark: install
	@start=$$(date +%s); set -e; \
	test -f $(BENCH_DATA)/synth_summary.json || $(CLI) synth --profile benchmark --out $(BENCH_DATA); \
	$(CLI) preprocess --profile benchmark --root $(BENCH_DATA) --cache $(BENCH_CACHE); \
	$(CLI) ablate --profile benchmark --root $(BENCH_DATA) --cache $(BENCH_CACHE) \
		--set train.run=$(BENCH_RUN) $(BENCH_SIZE) --all; \
	$(CLI) report --profile benchmark; \
	echo "benchmark: wall time $$(( $$(date +%s) - start )) s"

# The positive control at benchmark scale: every variant again on exact (ground-truth) skeletons,
# so a near-chance MediaPipe result can be told apart from a model that cannot learn. Its verdicts
# are reported beside the MediaPipe ones, never mixed with them.
benchmark-control: install
	@start=$$(date +%s); set -e; \
	test -f $(BENCH_DATA)/synth_summary.json || $(CLI) synth --profile benchmark --out $(BENCH_DATA); \
	$(CLI) preprocess --profile benchmark --root $(BENCH_DATA) --cache $(BENCH_GT_CACHE) \
		--pose-source groundtruth; \
	$(CLI) ablate --profile benchmark --root $(BENCH_DATA) --cache $(BENCH_GT_CACHE) \
		--set train.run=$(BENCH_RUN)-groundtruth $(BENCH_SIZE) --all; \
	$(CLI) report --profile benchmark; \
	echo "benchmark-control: wall time $$(( $$(date +%s) - start )) s"

# `make pose-error`: where MediaPipe loses identity on the benchmark set (README "Where MediaPipe
# loses identity"): its cache against the ground truth, then each measured error component added
# back to the truth alone (the noise-model controls), each probed and learned by shape + gait.
# Needs the caches `make benchmark` and `make benchmark-control` build. Control runs go to
# $(RUNS)-controls, apart from the report's runs.
CONTROLS := bias drift jitter drift+jitter iid shrinkage all facing bias-facing template \
  motion motion+jitter motion+drift motion+all offset offset-0.5 offset-0.25
CONTROL_DIR := cache/skeletons/controls
pose-error: install
	@start=$$(date +%s); set -e; export OMP_NUM_THREADS=1; \
	$(CLI) pose-error --profile benchmark --cache $(BENCH_CACHE) --truth $(BENCH_GT_CACHE); \
	for c in $(CONTROLS); do \
	  test -f $(CONTROL_DIR)/gt+$$c.h5 || $(CLI) pose-error --profile benchmark --cache $(BENCH_CACHE) \
	    --truth $(BENCH_GT_CACHE) --control $$c --out $(CONTROL_DIR)/gt+$$c.h5 > /dev/null; \
	  $(CLI) probe --profile benchmark --cache $(CONTROL_DIR)/gt+$$c.h5; \
	  test -f $(RUNS)-controls/sg-$$c/metrics.json || $(CLI) train --profile benchmark \
	    --root $(BENCH_DATA) --cache $(CONTROL_DIR)/gt+$$c.h5 --no-appearance --run sg-$$c \
	    --set paths.runs_dir=$(RUNS)-controls; \
	done; \
	echo "pose-error: wall time $$(( $$(date +%s) - start )) s"

# `make ucalgary`: the skeleton-only protocol on real Kinect walks (README "Real people's
# skeletons"): cache → probe → shape + gait (two seeds), shape alone, gait alone → paired
# comparisons. Finished runs are kept (delete $(RUNS)/$(UCAL_RUN)* to retrain). Re-run it on
# transformed joints with another cache and run name, e.g. (pipeline/transforms.py)
#   make ucalgary UCAL_CACHE=cache/skeletons/ucalgary-noisy.h5 UCAL_RUN=ucalgary-noisy \
#     UCAL_SET="--set preprocess.joints_transform=pipeline.transforms:mediapipe_noise --set preprocess.transform_args=bias=1,jitter=0"
# One torch thread a process: this model is small, and two threads on a loaded 2-core machine
# were measured 20x slower a step (6.2 s vs 0.27 s).
UCALGARY ?= ../shared/data/ucalgary-gait
UCAL_CACHE ?= cache/skeletons/ucalgary.h5
UCAL_RUN ?= ucalgary
UCAL_SET ?=
UCAL = --profile ucalgary --root $(UCALGARY) --cache $(UCAL_CACHE)
ucalgary: install
	@start=$$(date +%s); set -e; export OMP_NUM_THREADS=1; \
	$(CLI) preprocess $(UCAL) $(UCAL_SET); \
	$(CLI) probe --profile ucalgary --cache $(UCAL_CACHE); \
	train() { run=$$1; shift; test -f $(RUNS)/$$run/metrics.json || \
	  $(CLI) train $(UCAL) $(UCAL_SET) --run $$run "$$@"; }; \
	train $(UCAL_RUN)-shape-gait; \
	train $(UCAL_RUN)-shape-gait-seed1 --set train.seed=1; \
	train $(UCAL_RUN)-shape --no-gait; \
	train $(UCAL_RUN)-gait --no-shape; \
	probe=reports/probe_$$(basename $(UCAL_CACHE) .h5).json; \
	$(CLI) compare --profile ucalgary $(UCAL_RUN)-shape-gait $$probe; \
	$(CLI) compare --profile ucalgary $(UCAL_RUN)-shape-gait-seed1 $$probe; \
	$(CLI) compare --profile ucalgary $(UCAL_RUN)-shape-gait $(UCAL_RUN)-shape; \
	$(CLI) compare --profile ucalgary $(UCAL_RUN)-shape-gait $(UCAL_RUN)-gait; \
	$(CLI) compare --profile ucalgary $(UCAL_RUN)-shape-gait $(UCAL_RUN)-shape-gait-seed1; \
	echo "ucalgary: wall time $$(( $$(date +%s) - start )) s"

# The steps chain as files: each target builds what it reads and is missing (the set, the cache,
# a trained run), so `make preprocess`, `make train`, `make report` work in that order on a fresh
# clone. Prerequisites are order-only (after `|`): a newer cache never retrains an existing run.
synth: install
	$(CLI) synth --profile $(PROFILE) --out $(DATA)

$(DATA)/synth_summary.json: | $(STAMP)
	$(CLI) synth --profile $(PROFILE) --out $(DATA)

preprocess $(CACHE): | $(STAMP) $(DATA_READY)
	$(CLI) preprocess --profile $(PROFILE) --root $(DATA) --cache $(CACHE)

train $(RUN_METRICS): | $(STAMP) $(CACHE)
	$(CLI) train --profile $(PROFILE) --root $(DATA) --cache $(CACHE) --run $(RUN) $(RESUME_FLAG)

evaluate: | $(STAMP) $(RUN_METRICS)
	$(CLI) evaluate --profile $(PROFILE) --run $(RUN)

report: | $(STAMP) $(RUN_METRICS)
	$(CLI) report --profile $(PROFILE)

ablate: | $(STAMP) $(CACHE)
	$(CLI) ablate --profile $(PROFILE) --root $(DATA) --cache $(CACHE) --run $(RUN) --all

bench: install
	$(CLI) bench --profile $(PROFILE)

# On a CUDA host, in one call: the bench's CUDA section and the paper profile for a few epochs
# at 256×128 with AMP; figures in reports/gpu-check. Not `install`: a GPU host is usually offline
# and has its own CUDA torch, which the script uses when there is no .venv. Refuses without CUDA.
gpu-check:
	bash tools/gpu_check.sh $(if $(GPU_CHECK_OUT),$(GPU_CHECK_OUT),reports/gpu-check)

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest tests

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Mutation testing of the core modules, not part of `make test` or CI: mutmut mutates the modules
# and runs the test files named in [tool.mutmut] (pyproject.toml), then the kill rate per module.
MUTATION_JOBS ?= 2
mutation: install
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[mutation]"
	rm -rf mutants
	OMP_NUM_THREADS=1 nice -n 10 $(BIN)/mutmut run --max-children $(MUTATION_JOBS)
	$(BIN)/python tools/mutation_report.py $(BIN)/mutmut

clean:
	rm -rf cache/* reports/* mutants && touch cache/.gitkeep reports/.gitkeep
