# hse top-level Makefile. `make demo` and `make test` work on a fresh Debian 12
# machine: they install dependencies (make deps) and build (make build) first.
PYTHON ?= $(if $(wildcard .venv/bin/python3),$(CURDIR)/.venv/bin/python3,python3)
BUILD ?= build
JOBS ?= $(shell nproc)
PREFIX ?= /usr/local
CMAKE_ARGS ?=
CTEST_ARGS ?=

.PHONY: all build deps test demo install package clean configure

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

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# build/hse-<version>-<arch>.tar.gz and .deb (cpack)
package: build
	cd $(BUILD) && cpack

clean:
	rm -rf $(BUILD) out
