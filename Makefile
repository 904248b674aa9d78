# llmgate — the two commands: `make run` and `make test`. Both install what is missing
# (Debian packages via apt-get, the test clients via npm ci), then build with CMake.
#
#   make run     build and start the gateway on its embedded default config
#   make test    build (normal + ASan/UBSan), then run unit, integration and fuzz smoke tests
#   make bench   run the benchmarks and update docs/BENCHMARKS.md
#   make fuzz    long libFuzzer runs (FUZZ_SECONDS per target)
#   make docs    regenerate the component reference in docs/configuration.md

BUILD       ?= build
BUILD_ASAN  ?= build-asan
BUILD_BENCH ?= build-bench
BUILD_FUZZ  ?= build-fuzz
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
ARGS        ?=

# Everything the build, the tests and the benchmarks need, as Debian 12 packages.
DEBIAN_PACKAGES := cmake make gcc pkg-config git \
	protobuf-c-compiler libprotobuf-c-dev libgrpc-dev \
	libevent-dev libcjson-dev libyajl-dev libyaml-dev \
	zlib1g-dev libdeflate-dev libisal-dev libzstd-dev libssl-dev libcurl4-openssl-dev libnghttp2-dev libpcre2-dev \
	libcmocka-dev clang libclang-rt-14-dev zstd curl openssl ca-certificates

.PHONY: all deps build build-asan run test test-unit test-asan npm bench fuzz clean format docs

all: build

deps:
	@missing=""; \
	for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "llmgate: installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; \
	  elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; \
	  else echo "llmgate: missing Debian packages:$$missing"; \
	       echo "llmgate: run as root or install sudo, or install them yourself: apt-get install$$missing"; exit 1; fi; \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps
	@[ -f $(BUILD)/Makefile ] || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j$(JOBS)

build-asan: deps
	@[ -f $(BUILD_ASAN)/Makefile ] || cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DLLMGATE_SANITIZE=ON
	cmake --build $(BUILD_ASAN) -j$(JOBS)

run: build
	./$(BUILD)/llmgate $(ARGS)

npm: deps
	npm ci --prefix tests/integration --no-audit --no-fund --loglevel=error

# The sanitizer build runs the whole suite again: leaks and UB fail the run.
# tests/run-suite.sh ends with one "N passed, M failed" line over everything.
test: build build-asan npm fuzz-build
	bash tests/run-suite.sh $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ) $(FUZZ_SMOKE_SECONDS)

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -R unit/

FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 20

$(BUILD_FUZZ)/.configured:
	CC=clang cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=Debug -DLLMGATE_SANITIZE=ON -DLLMGATE_FUZZ=ON -DLLMGATE_TESTS=OFF
	touch $@

fuzz-build: deps $(BUILD_FUZZ)/.configured
	cmake --build $(BUILD_FUZZ) -j$(JOBS)

# A short run of every fuzz target on its seed corpus: part of `make test`.
fuzz-smoke: fuzz-build
	@set -e; for f in $(BUILD_FUZZ)/fuzz_*; do \
	  [ -x "$$f" ] || continue; name=$$(basename $$f); \
	  mkdir -p $(BUILD_FUZZ)/corpus/$$name; \
	  echo "fuzz smoke: $$name ($(FUZZ_SMOKE_SECONDS)s)"; \
	  $$f -max_total_time=$(FUZZ_SMOKE_SECONDS) -print_final_stats=0 $(BUILD_FUZZ)/corpus/$$name tests/fuzz/corpus/$$name 2>$(BUILD_FUZZ)/$$name.log \
	    || { tail -50 $(BUILD_FUZZ)/$$name.log; exit 1; }; \
	done

fuzz: fuzz-build
	@set -e; for f in $(BUILD_FUZZ)/fuzz_*; do \
	  [ -x "$$f" ] || continue; name=$$(basename $$f); mkdir -p $(BUILD_FUZZ)/corpus/$$name; \
	  $$f -max_total_time=$(FUZZ_SECONDS) $(BUILD_FUZZ)/corpus/$$name tests/fuzz/corpus/$$name; \
	done

bench: deps
	@[ -f $(BUILD_BENCH)/Makefile ] || cmake -S . -B $(BUILD_BENCH) -DCMAKE_BUILD_TYPE=Release -DLLMGATE_TESTS=OFF
	cmake --build $(BUILD_BENCH) -j$(JOBS)
	bash bench/run.sh $(BUILD_BENCH)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# docs/configuration.md's component reference comes from the field tables.
docs: build
	bash tools/gen-config-doc.sh $(BUILD)/llmgate

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_BENCH) $(BUILD_FUZZ)
