# Tests of the core of the heap profiler (issue 2): the sampler and its
# buckets, the cycle accounting of seed 002, the fast CFI unwinder against
# libgcc's, the malloc interposer's semantics, threads and fork.  Included
# from tests/CMakeLists.txt, where MPROF_TEST_DIR, MPROF_LIB and MPROF_CLI
# are set.  The real-program tests (sqlite3, python3, git) are in
# realprog.cmake.
#
# Unit tests link the static library: its preload.o defines malloc, so the
# test program is profiled without LD_PRELOAD, and the hidden functions
# (mprof_next_interval, mprof_stack_capture, ...) are callable.
#
# Sanitizer builds (make check-sanitizers): the tests that only drive the
# profiler's own logic (interval draws, the cycle accounting through
# mprof_record_alloc/free, the unwinder) are labelled "sanitize" and built
# by mprof_sanitizer_tests, so they also run under ASan+UBSan and TSan.
# The tests that need malloc interposed (sampling end to end, buckets,
# threads) cannot: the sanitizer runtime is linked first and defines malloc
# itself, so the archive's preload.o is never pulled in; and forcing it in
# (--whole-archive) crashes, because the sanitizer's own start-up calls
# malloc before its shadow memory exists, landing in our instrumented
# wrapper.  Those run in the normal build only.
if(NOT TARGET mprof_sanitizer_tests)
  add_custom_target(mprof_sanitizer_tests)
endif()

find_program(MPROF_GO_FOR_CORE go)
if(NOT MPROF_GO_FOR_CORE)
  set(MPROF_GO_FOR_CORE go) # the tests fail and say so, rather than vanish
endif()
# Debian's python3 for tests/core_pprof.py: quick to start, unlike a version
# manager's shim that may come first in PATH.
find_program(MPROF_PYTHON_FOR_CORE python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT MPROF_PYTHON_FOR_CORE)
  find_program(MPROF_PYTHON_FOR_CORE python3)
endif()
if(NOT MPROF_PYTHON_FOR_CORE)
  set(MPROF_PYTHON_FOR_CORE python3)
endif()
set(MPROF_CORE_ENV "MPROF_GO=${MPROF_GO_FOR_CORE}" "MPROF_PYTHON=${MPROF_PYTHON_FOR_CORE}")

# Options for every core test program: -g for names and lines in failure
# messages; -fno-builtin so that malloc/free pairs are not folded away; no
# hot/cold splitting, so that every call site lies inside its function's
# symbol (the tests check stack[0] against [&fn, &fn + size)).
set(MPROF_CORE_COPTS -g -fno-builtin -fno-reorder-blocks-and-partition)

# mprof_core_unit(NAME [SANITIZE] SOURCES ...): a test program linked with
# libmprof.a; SANITIZE adds it to the sanitizer builds.
function(mprof_core_unit name)
  cmake_parse_arguments(U "SANITIZE" "" "SOURCES" ${ARGN})
  add_executable(${name} ${U_SOURCES})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src ${MPROF_TEST_DIR})
  target_compile_definitions(${name} PRIVATE _GNU_SOURCE)
  target_compile_options(${name} PRIVATE ${MPROF_CORE_COPTS})
  set_target_properties(${name} PROPERTIES ENABLE_EXPORTS ON) # -rdynamic for dladdr1
  # The constructor (lifecycle.o) even when preload.o is not pulled in (see
  # above): the sampler must be initialized for mprof_record_alloc.
  target_link_options(${name} PRIVATE -Wl,-u,mprof_lifecycle_start)
  target_link_libraries(${name} PRIVATE mprof_static Threads::Threads m)
  if(U_SANITIZE)
    add_dependencies(mprof_sanitizer_tests ${name})
  endif()
endfunction()

# ------------------------------------------------------------ sampler

mprof_core_unit(test_sampling SANITIZE SOURCES ${MPROF_TEST_DIR}/test_sampling.c)
add_test(NAME core_sampling_interval COMMAND test_sampling interval)
add_test(NAME core_sampling_live COMMAND test_sampling live)
add_test(NAME core_sampling_records COMMAND test_sampling records)
set_tests_properties(core_sampling_interval core_sampling_live core_sampling_records
  PROPERTIES LABELS "unit;sanitize;core" TIMEOUT 120)
if(NOT MPROF_SANITIZE) # these need malloc interposed
  add_test(NAME core_sampling_e2e COMMAND test_sampling e2e)
  add_test(NAME core_sampling_buckets COMMAND test_sampling buckets)
  add_test(NAME core_sampling_memo COMMAND test_sampling memo)
  add_test(NAME core_sampling_boot COMMAND test_sampling boot)
  add_test(NAME core_sampling_boot_table COMMAND test_sampling boot)
  add_test(NAME core_sampling_headers COMMAND test_sampling headers)
  add_test(NAME core_sampling_fuzz COMMAND test_sampling fuzz)
  add_test(NAME core_sampling_fuzz_table COMMAND test_sampling fuzz)
  set_tests_properties(core_sampling_fuzz core_sampling_fuzz_table PROPERTIES LABELS "unit;core"
    TIMEOUT 120)
  set_tests_properties(core_sampling_fuzz_table PROPERTIES ENVIRONMENT "MPROF_HEADERS=0")
  # MPROF_RATE from the environment, never overridden through the API.
  add_test(NAME core_sampling_guard COMMAND test_sampling guard)
  set_tests_properties(core_sampling_e2e core_sampling_buckets core_sampling_memo core_sampling_boot
    core_sampling_headers core_sampling_guard
    PROPERTIES LABELS "unit;core" TIMEOUT 120)
  set_tests_properties(core_sampling_guard PROPERTIES ENVIRONMENT "MPROF_RATE=1")
  set_tests_properties(core_sampling_boot_table PROPERTIES LABELS "unit;core" TIMEOUT 120
    ENVIRONMENT "MPROF_HEADERS=0;CORE_EXPECT_TABLE=1")
endif()

# ------------------------------------------------------------ cycles

mprof_core_unit(test_cycles SANITIZE SOURCES ${MPROF_TEST_DIR}/test_cycles.c)
add_test(NAME core_cycles_timeline COMMAND test_cycles timeline)
add_test(NAME core_cycles_model COMMAND test_cycles model)
add_test(NAME core_cycles_threads COMMAND test_cycles threads)
set_tests_properties(core_cycles_timeline core_cycles_model core_cycles_threads
  PROPERTIES LABELS "unit;sanitize;core" TIMEOUT 120)

# ------------------------------------------------------------ unwinder

# Contexts built three ways.  The per-source options come after the global
# -fno-omit-frame-pointer, so they win.
mprof_core_unit(test_unwind SANITIZE SOURCES ${MPROF_TEST_DIR}/test_unwind.c
  ${MPROF_TEST_DIR}/test_unwind_o2.c ${MPROF_TEST_DIR}/test_unwind_o0.c
  ${MPROF_TEST_DIR}/core_unwind_cxx.cpp)
set_source_files_properties(${MPROF_TEST_DIR}/test_unwind_o2.c ${MPROF_TEST_DIR}/core_unwind_cxx.cpp
  PROPERTIES COMPILE_OPTIONS "-O2;-fomit-frame-pointer")
set_source_files_properties(${MPROF_TEST_DIR}/test_unwind_o0.c PROPERTIES COMPILE_OPTIONS "-O0")
add_test(NAME core_unwind COMMAND test_unwind)
set_tests_properties(core_unwind PROPERTIES LABELS "unit;sanitize;core" TIMEOUT 120)

# The rule cache across dlclose (needs the interposer's dlclose, so not in
# the sanitizer builds): two libraries with the same layout and different
# unwind rules, loaded in turn at the same address.
if(NOT MPROF_SANITIZE)
  foreach(v a b)
    add_library(unwind_reload_${v} SHARED ${MPROF_TEST_DIR}/unwind_reload.S)
    set_target_properties(unwind_reload_${v} PROPERTIES OUTPUT_NAME unwind_reload_${v}
      LINKER_LANGUAGE C)
  endforeach()
  target_compile_definitions(unwind_reload_b PRIVATE VARIANT_B)
  mprof_core_unit(test_unwind_reload SOURCES ${MPROF_TEST_DIR}/test_unwind_reload.c)
  target_link_libraries(test_unwind_reload PRIVATE ${CMAKE_DL_LIBS})
  add_dependencies(test_unwind_reload unwind_reload_a unwind_reload_b)
  add_test(NAME core_unwind_reload COMMAND test_unwind_reload
    $<TARGET_FILE:unwind_reload_a> $<TARGET_FILE:unwind_reload_b>)
  set_tests_properties(core_unwind_reload PROPERTIES LABELS "unit;core" TIMEOUT 60)
endif()

# ------------------------------------------------------------ interposer

# Unmodified programs (they do not link mprof; under LD_PRELOAD they find
# its API with dlsym), run plain and preloaded by core_interpose.sh.
if(NOT MPROF_SANITIZE)
  add_executable(test_interpose ${MPROF_TEST_DIR}/test_interpose.c)
  add_executable(core_interpose_cxx ${MPROF_TEST_DIR}/core_interpose_cxx.cpp)
  foreach(t test_interpose core_interpose_cxx)
    target_include_directories(${t} PRIVATE ${CMAKE_SOURCE_DIR}/include ${MPROF_TEST_DIR})
    target_compile_definitions(${t} PRIVATE _GNU_SOURCE)
    target_compile_options(${t} PRIVATE ${MPROF_CORE_COPTS})
    set_target_properties(${t} PROPERTIES ENABLE_EXPORTS ON)
    target_link_libraries(${t} PRIVATE ${CMAKE_DL_LIBS})
  endforeach()
  add_test(NAME core_interpose
    COMMAND sh ${MPROF_TEST_DIR}/core_interpose.sh ${MPROF_LIB}
      $<TARGET_FILE:test_interpose> $<TARGET_FILE:core_interpose_cxx>)
  set_tests_properties(core_interpose PROPERTIES LABELS "core;preload" TIMEOUT 120
    ENVIRONMENT "${MPROF_CORE_ENV}")
endif()

# ------------------------------------------------------------ threads

# The same program twice: unmodified under LD_PRELOAD, and linked with
# libmprof.a.  Not in the sanitizer builds (it needs malloc interposed, see
# above); the concurrency of the sampler's accounting is covered there by
# core_cycles_threads (4 threads through mprof_record_alloc/free while
# others run next_cycle, flush and read).
if(NOT MPROF_SANITIZE)
  mprof_core_unit(test_threads_static SOURCES ${MPROF_TEST_DIR}/test_threads.c)
  add_test(NAME core_threads_static COMMAND test_threads_static)
  set_tests_properties(core_threads_static PROPERTIES LABELS "unit;core" TIMEOUT 120
    ENVIRONMENT "MPROF_RATE=1")
  add_executable(test_threads ${MPROF_TEST_DIR}/test_threads.c)
  target_include_directories(test_threads PRIVATE ${CMAKE_SOURCE_DIR}/include ${MPROF_TEST_DIR})
  target_compile_definitions(test_threads PRIVATE _GNU_SOURCE)
  target_compile_options(test_threads PRIVATE ${MPROF_CORE_COPTS})
  set_target_properties(test_threads PROPERTIES ENABLE_EXPORTS ON)
  target_link_libraries(test_threads PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
  add_test(NAME core_threads_preload COMMAND test_threads)
  set_tests_properties(core_threads_preload PROPERTIES LABELS "core;preload" TIMEOUT 120
    ENVIRONMENT "MPROF_RATE=1;LD_PRELOAD=${MPROF_LIB}")
  # The same with sampled blocks found through the live table (as over an
  # allocator other than glibc's).
  add_test(NAME core_threads_table COMMAND test_threads)
  set_tests_properties(core_threads_table PROPERTIES LABELS "core;preload" TIMEOUT 120
    ENVIRONMENT "MPROF_RATE=1;MPROF_HEADERS=0;LD_PRELOAD=${MPROF_LIB}")
endif()

# ------------------------------------------------------------ fork

if(NOT MPROF_SANITIZE)
  add_executable(test_fork ${MPROF_TEST_DIR}/test_fork.c)
  target_compile_options(test_fork PRIVATE ${MPROF_CORE_COPTS})
  target_link_libraries(test_fork PRIVATE Threads::Threads)
  add_test(NAME core_fork
    COMMAND sh ${MPROF_TEST_DIR}/core_fork.sh ${MPROF_LIB} $<TARGET_FILE:test_fork>)
  set_tests_properties(core_fork PROPERTIES LABELS "core;preload;pprof" TIMEOUT 180
    ENVIRONMENT "${MPROF_CORE_ENV}")
  # Children that exec a new image (as shells and git do) must not
  # overwrite the parent's file when MPROF_HEAP has no %p.
  add_test(NAME core_fork_exec
    COMMAND sh ${MPROF_TEST_DIR}/core_fork.sh ${MPROF_LIB} $<TARGET_FILE:test_fork> exec)
  set_tests_properties(core_fork_exec PROPERTIES LABELS "core;preload;pprof" TIMEOUT 180
    ENVIRONMENT "${MPROF_CORE_ENV}")
endif()
