# hse top-level Makefile. `make demo` and `make test` work on a fresh Debian 12
# machine: they install dependencies (make deps) and build (make build) first.
PYTHON ?= $(if $(wildcard .venv/bin/python3),$(CURDIR)/.venv/bin/python3,python3)
BUILD ?= build
JOBS ?= $(shell nproc)
PREFIX ?= /usr/local
CMAKE_ARGS ?=
CTEST_ARGS ?=

.PHONY: all build deps test demo tables install package clean configure fuzz test-asan test-tsan

all: build

deps: .deps-stamp
.deps-stamp: scripts/install-deps.sh
	bash scripts/install-deps.sh
	touch $@

$(BUILD)/build.ninja: | .deps-stamp
	cmake -S . -B $(BUILD) -G Ninja \
	  -DCMAKE_PREFIX_PATH="$$($(PYTHON) -c 'import torch; print(torch.utils.cmake_prefix_path)')" \
	  -DPython3_EXECUTABLE="$$(command -v $(PYTHON))" $(CMAKE_ARGS)

configure: $(BUILD)/build.ninja

build: .deps-stamp $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

demo: build
	$(MAKE) -f Makefile.pipeline BIN=$(BUILD)/bin OUT=out/demo PYTHON=$(PYTHON)

# The paper's tables on the demo (after or instead of make demo: they share out/demo); TABLES_FAST=1
# for the quick set in out/tables-fast.
tables: build
	$(MAKE) -f Makefile.pipeline BIN=$(BUILD)/bin $(if $(filter 1,$(TABLES_FAST)),TABLES_FAST=1,OUT=out/demo) PYTHON=$(PYTHON) tables

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# build/hse-<version>-<arch>.tar.gz and .deb (cpack)
package: build
	cd $(BUILD) && cpack

# libFuzzer targets (tests/fuzz) built with clang, ASan and UBSan in build-fuzz (no LibTorch), each
# run FUZZ_SECONDS on a copy of its corpus: one line per target, "fuzz NAME: RUNS runs, CRASHES
# crashes"; non-zero exit on any crash (the input is left in build-fuzz/findings/). FUZZ_TARGETS="csv h5"
# runs only those.
FUZZ_SECONDS ?= 60
FUZZ_BUILD ?= build-fuzz
fuzz: .deps-stamp
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHSE_FUZZ=ON -DHSE_WITH_TORCH=OFF -DHSE_WITH_ITK=OFF -DHSE_CUDA=OFF -DHSE_BUILD_BENCH=OFF \
	  -DPython3_EXECUTABLE="$$(command -v $(PYTHON))"
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_targets
	FUZZ_TARGETS="$(FUZZ_TARGETS)" bash scripts/run_fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# The unit, torch and CLI tests under AddressSanitizer + UndefinedBehaviorSanitizer, in build-asan
# (gcc, without CUDA: nvcc code is not instrumented). Leak checking is off (LibTorch and Python
# keep allocations until exit); any other report fails the test that triggered it.
ASAN_BUILD ?= build-asan
test-asan: .deps-stamp
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHSE_SANITIZE=ON -DHSE_CUDA=OFF \
	  -DHSE_BUILD_BENCH=OFF -DCMAKE_PREFIX_PATH="$$($(PYTHON) -c 'import torch; print(torch.utils.cmake_prefix_path)')" \
	  -DPython3_EXECUTABLE="$$(command -v $(PYTHON))"
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:detect_odr_violation=0:allocator_may_return_null=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) -L 'unit|torch|cli' $(CTEST_ARGS)

# The data workers' queue (lib/hse/train/prefetch.h, header-only) and its unit test under
# ThreadSanitizer: a data race or lock-order problem fails the target. LibTorch is not
# TSan-instrumented, so the trainers themselves are not run under it.
test-tsan:
	mkdir -p $(BUILD)-tsan
	$(CXX) -std=c++17 -g -O1 -fsanitize=thread -Ilib tests/unit/doctest_main.cpp tests/unit/test_prefetch.cpp \
	  -o $(BUILD)-tsan/test_prefetch -pthread
	TSAN_OPTIONS=halt_on_error=1 $(BUILD)-tsan/test_prefetch

clean:
	rm -rf $(BUILD) out
