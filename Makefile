# The two commands of the README, and the pieces they are made of.
#   make demo   install what is missing, build, run the demo on the embedded broker
#   make test   install what is missing, build, run every test (dev, ASan+UBSan, TSan, fuzz, checks)
SHELL := /bin/bash
JOBS ?= $(shell nproc)
CTEST_JOBS ?= 2
# The sanitizer runs: most of their time is the fault tests waiting on paced producers and
# broker outages, so they run one test more at a time than there are cores.
SAN_CTEST_JOBS ?= $(shell echo $$(( $$(nproc) + 1 )))
FUZZ_SECONDS ?= 60
DEMO_ARGS ?=

.PHONY: all deps test-deps build demo test test-dev test-asan test-tsan test-fuzz lint bench clean

all: build

# What building and running needs (Debian packages, group "build").
deps:
	@scripts/install-deps.sh build

# What the tests need besides: third-party peers and tools (Debian packages, group "test"),
# and the npm validators of the Kubernetes manifests (pinned by their package-lock.json).
test-deps: deps
	@scripts/install-deps.sh build,test
	@scripts/install-npm-tools.sh

build: deps
	@cmake --preset dev -DLOGINFLOW_WERROR=$${LOGINFLOW_WERROR:-OFF} >/dev/null
	@cmake --build --preset dev -j$(JOBS)

demo: build
	./build/dev/loginflow demo $(DEMO_ARGS)

# Every test: the dev build (unit, integration, e2e), the sanitizer builds over the unit and
# integration tests, a bounded fuzz run of the transform.
test: test-deps
	@$(MAKE) --no-print-directory test-dev
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory test-tsan
	@$(MAKE) --no-print-directory test-fuzz
	@echo "make test: all passed"

test-dev: test-deps
	cmake --preset dev -DLOGINFLOW_WERROR=ON >/dev/null
	cmake --build --preset dev -j$(JOBS)
	ctest --preset dev -j$(CTEST_JOBS)

test-asan: test-deps
	cmake --preset asan -DLOGINFLOW_WERROR=ON >/dev/null
	cmake --build --preset asan -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --preset asan -j$(SAN_CTEST_JOBS)

test-tsan: test-deps
	cmake --preset tsan -DLOGINFLOW_WERROR=ON >/dev/null
	cmake --build --preset tsan -j$(JOBS) --target concurrency_tests
	LD_PRELOAD=$(CURDIR)/build/tsan/libc11threads_shim.so \
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/test/tsan.supp" \
	  ctest --preset tsan -j$(SAN_CTEST_JOBS)

test-fuzz: test-deps
	cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz -j$(JOBS) --target transform_fuzz
	test/fuzz/run.sh build/fuzz $(FUZZ_SECONDS)

# clang-tidy (bugprone, concurrency, performance; .clang-tidy) over src/, on the dev build's
# compile commands. librdkafka's RD_KAFKA_V_* macros are GNU statement expressions and
# RapidJSON 1.1's iterator comparisons are ambiguous under C++20's reversed operators: both
# are in those libraries' headers, so clang's own diagnostics for them are switched off.
lint: test-deps
	cmake --preset dev -DLOGINFLOW_WERROR=ON >/dev/null
	run-clang-tidy -p build/dev -quiet -j$(JOBS) \
	  -extra-arg=-Wno-gnu-statement-expression -extra-arg=-Wno-ambiguous-reversed-operator \
	  '$(CURDIR)/src/.*\.cpp$$' > build/clang-tidy.log 2>&1 \
	  || { grep -E 'error:|warning:' build/clang-tidy.log | sort -u; echo "lint: clang-tidy found problems (build/clang-tidy.log)"; exit 1; }
	@echo "lint: clang-tidy clean on src/"

# The benchmark harness (bench/README.md, docs/BENCHMARKS.md): loginflow, a passthrough
# program and the Python consumer it replaces, side by side on the embedded broker.
# BENCH_ARGS go to bench/run_bench.py (--quick for a smoke run); BENCH_JOBS builds in parallel.
bench: deps
	@scripts/install-deps.sh build,test
	cmake --preset release -DLOGINFLOW_BUILD_BENCH=ON >/dev/null
	cmake --build --preset release -j$(or $(BENCH_JOBS),1)
	/usr/bin/python3 bench/run_bench.py $(BENCH_ARGS)

clean:
	rm -rf build
