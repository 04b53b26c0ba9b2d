# Root driver for the CMake build.  `make` builds build/libmprof.so,
# build/libmprof.a and build/mprof; `make check` installs what a fresh Debian
# machine lacks, builds and runs every test; `make demo` profiles the bundled
# example; `make bench` prints the benchmark tables; `make stress` runs the
# long fork tests.
BUILD      ?= build
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
MAKEFLAGS  += --no-print-directory

.PHONY: fuzz configure all install deb deps check check-layers check-docs docs check-sanitizers demo bench stress clean

# The configure step's chatter is kept in $(BUILD)/configure.log and shown
# whole when it fails (a missing libdw is said there, not in the error).
# The build's own output, warnings and errors included, is never hidden.
# $(call cmake_configure,DIR,ARGS)
cmake_configure = mkdir -p $(1) && cmake -S . -B $(1) $(2) >$(1)/configure.log 2>&1 || \
    { cat $(1)/configure.log; echo "mprof: configuring $(1) failed (above); 'make deps' installs what the build needs"; exit 1; }

configure:
	@$(call cmake_configure,$(BUILD),-DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS))

all: configure
	@cmake --build $(BUILD) -j $(JOBS)

# make install PREFIX=DIR: bin/mprof, lib/<multiarch>/libmprof.so and .a,
# include/mprof.h, pkg-config and CMake package files, man page (see
# cmake/install.cmake).  make deb: $(BUILD)/mprof_<version>_<arch>.deb, the
# same files under /usr (apt install ./$(BUILD)/mprof_*.deb).
PREFIX ?= /usr/local
install: configure
	@cmake --build $(BUILD) -j $(JOBS) --target mprof_shared mprof_static mprof_cli mprof_man
	@cmake --install $(BUILD) --prefix $(PREFIX)

deb: all
	@cd $(BUILD) && cpack -G DEB

# The include rule of src/LAYERS (see src/README.md).
check-layers:
	@scripts/check-layers.sh

deps:
	@scripts/install-deps.sh

# The settings tables of README.md and docs/cli.md, from src/shared/options.def.
docs: all
	@scripts/docs-tables.sh $(BUILD) update

check-docs: all
	@scripts/docs-tables.sh $(BUILD) check

check: deps check-layers all check-docs
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 300
	@$(MAKE) --no-print-directory check-sanitizers

# The tests labelled "sanitize" (pure-logic unit tests) again under
# ASan+UBSan and under TSan.
check-sanitizers:
	@$(call cmake_configure,$(BUILD)-asan,-DCMAKE_BUILD_TYPE=Debug -DMPROF_SANITIZE=address)
	@cmake --build $(BUILD)-asan -j $(JOBS) --target mprof_sanitizer_tests
	cd $(BUILD)-asan && ctest --output-on-failure -L sanitize -j $(JOBS) --timeout 300
	@$(call cmake_configure,$(BUILD)-tsan,-DCMAKE_BUILD_TYPE=Debug -DMPROF_SANITIZE=thread)
	@cmake --build $(BUILD)-tsan -j $(JOBS) --target mprof_sanitizer_tests
	cd $(BUILD)-tsan && ctest --output-on-failure -L sanitize -j $(JOBS) --timeout 300

# deps first (on a fresh clone the build needs libdw and zlib), then only
# what the demo runs: the library, the CLI and the example, not the tests.
demo: deps
	@$(MAKE) configure
	@cmake --build $(BUILD) -j $(JOBS) --target mprof_shared mprof_cli leaky_cache
	@examples/demo.sh $(BUILD)

bench: all
	@bench/run.sh $(BUILD)

# The long runs of what make check runs a slice of: the fork stress for 30 s
# per mode and setting, every glibc malloc test of
# tests/core/glibc_malloc_tests.txt (the fork tests at their 10,000
# iterations), redis and nginx under load for 30 rounds.
STRESS_SECONDS ?= 30
stress: all
	@sh tests/core/core_fork_stress.sh $(CURDIR)/$(BUILD)/libmprof.so \
	    $(CURDIR)/$(BUILD)/tests/core/fork_stress $(STRESS_SECONDS)
	@sh tests/core/glibc_tests.sh $(CURDIR)/$(BUILD)/libmprof.so \
	    $(CURDIR)/$(BUILD)/tests/core/glibc-tests check,fork,stress full
	@bash tests/realprog/realprog_servers.sh $(CURDIR)/$(BUILD)/libmprof.so \
	    $(CURDIR)/$(BUILD)/mprof redis 30
	@bash tests/realprog/realprog_servers.sh $(CURDIR)/$(BUILD)/libmprof.so \
	    $(CURDIR)/$(BUILD)/mprof nginx 30

# libFuzzer (clang) on every harness of tests/fuzz/harnesses.txt for
# FUZZ_SECONDS each; findings are left in $(BUILD)/fuzz/artifacts/.
FUZZ_SECONDS ?= 60
fuzz: deps
	@sh tests/fuzz/fuzz.sh $(CURDIR)/$(BUILD)/fuzz $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan
