# Two commands do everything on a fresh machine: `make demo` and `make test`.
BUILD ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)

.PHONY: all bootstrap build test test-asan demo bench bench-startup clean

all: build

bootstrap:
	@bash scripts/bootstrap

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: bootstrap $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

# The whole suite (unit and process-level) under AddressSanitizer + UBSan.
test-asan: bootstrap
	cmake -S . -B $(BUILD)-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSEALDROP_SANITIZE=ON
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ctest --output-on-failure -j $(JOBS) --timeout 900

demo: build
	@bash scripts/demo $(BUILD)

bench: build
	@bash bench/run $(BUILD) && bash bench/startup $(BUILD)

bench-startup: build
	@bash bench/startup $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD)-asan
