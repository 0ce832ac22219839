# Two commands do everything on a fresh machine: `make demo` and `make test`.
BUILD ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 5

.PHONY: all bootstrap build install test test-asan test-tsan demo bench bench-startup bench-tpm bench-ledger bench-tls bench-load fuzz fuzz-smoke clean

all: build

bootstrap:
	@bash scripts/bootstrap

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: bootstrap $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# Stripped executables, man pages, bash completions and systemd units under
# PREFIX, staged under DESTDIR if set (docs/operations.md, "Installing").
PREFIX ?= /usr/local
install: build
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	cmake --build $(BUILD) -j $(JOBS)
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --strip

# Every unit and process-level test, then each fuzz target briefly: its
# seeds, the inputs of past findings, and FUZZ_SMOKE_SECONDS of mutation.
test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900
	@bash fuzz/run $(FUZZ_SMOKE_SECONDS) $(BUILD)-fuzz

# The whole suite (unit and process-level) under AddressSanitizer + UBSan.
test-asan: bootstrap
	cmake -S . -B $(BUILD)-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSEALDROP_SANITIZE=ON
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ctest --output-on-failure -j $(JOBS) --timeout 900

# The whole suite under ThreadSanitizer.
test-tsan: bootstrap
	cmake -S . -B $(BUILD)-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSEALDROP_TSAN=ON
	cmake --build $(BUILD)-tsan -j $(JOBS)
	cd $(BUILD)-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" ctest --output-on-failure -j $(JOBS) --timeout 900

# BACKEND=tpm runs the processor on a software TPM (swtpm) instead.
BACKEND ?= soft
demo: build
	@BACKEND=$(BACKEND) bash scripts/demo $(BUILD)

bench: build
	@bash bench/run $(BUILD) && bash bench/startup $(BUILD) && $(BUILD)/bench/tpm/tpm_ops_bench \
	  && $(BUILD)/bench/ledger/ledger_ops_bench && $(BUILD)/bench/tls/inner_tls_bench

# The TPM backend's cost per operation (signature, key unwrap, key load)
# next to the soft backend's, on swtpm.
bench-tpm: build
	@$(BUILD)/bench/tpm/tpm_ops_bench

# One SQLite ledger call: token check, balance, lookups, a charge, an open.
bench-ledger: build
	@$(BUILD)/bench/ledger/ledger_ops_bench --throughput=yes

# The second path's TLS handshake in CPU, both ends in one thread.
bench-tls: build
	@$(BUILD)/bench/tls/inner_tls_bench

# One sealdropd under sealdrop-load next to nginx under wrk, in one run:
# purchases/s, re-downloads/s, CPU per purchase, latency at half the peak,
# the ledger's charges/s, and 1000 slow downloads at once (docs/performance.md).
bench-load: build
	@bash bench/load/run $(BUILD)

bench-startup: build
	@bash bench/startup $(BUILD)

# libFuzzer targets (fuzz/README.md): every parser of untrusted bytes and the
# three state machines, FUZZ_SECONDS each; fuzz-smoke is the CI-sized run.
fuzz: bootstrap
	@bash fuzz/run $(FUZZ_SECONDS) $(BUILD)-fuzz

fuzz-smoke: bootstrap
	@bash fuzz/run $(FUZZ_SMOKE_SECONDS) $(BUILD)-fuzz

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan $(BUILD)-fuzz
