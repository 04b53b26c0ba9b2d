# Allocation tracing (MPROF_TRACE=alloc, src/trace.c), heap dumps
# (mprof_write_heap_dump, src/heap_dump.c) and `mprof dump`
# (src/cli/cmd_dump.c).  Included from tests/CMakeLists.txt, where
# MPROF_TEST_DIR, MPROF_LIB and MPROF_CLI are set.

if(NOT TARGET mprof_sanitizer_tests)
  add_custom_target(mprof_sanitizer_tests)
endif()

# ------------------------------------------------------------ unit tests
# Pure logic, also run under ASan+UBSan and TSan (make check-sanitizers).

# The dump writer with stand-ins for the sampler and the symbolizer
# (dump_stubs.c), the reader and the pprof conversion of `mprof dump`,
# checked field by field and with the CLI's pprof reader; every truncation
# and single-byte corruption of a dump.
add_executable(dump_unit
  ${MPROF_TEST_DIR}/dump_unit.c
  ${MPROF_TEST_DIR}/dump_stubs.c
  ${CMAKE_SOURCE_DIR}/src/profiles/heap_dump.c
  ${CMAKE_SOURCE_DIR}/src/profiles/registry.c
  ${CMAKE_SOURCE_DIR}/src/core/util.c
  ${CMAKE_SOURCE_DIR}/src/cli/cmd_dump.c
  ${CMAKE_SOURCE_DIR}/src/cli/profile_reader.c)
target_include_directories(dump_unit PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include
  ${MPROF_TEST_DIR})
target_compile_definitions(dump_unit PRIVATE _GNU_SOURCE)
target_link_libraries(dump_unit PRIVATE ZLIB::ZLIB Threads::Threads m)
add_dependencies(mprof_sanitizer_tests dump_unit)

# The trace's lock-free queue and writer alone (stand-ins for the stack
# capture and the symbolizer in trace_unit.c): four producers, a tiny queue.
add_executable(trace_unit
  ${MPROF_TEST_DIR}/trace_unit.c
  ${CMAKE_SOURCE_DIR}/src/profiles/trace.c
  ${CMAKE_SOURCE_DIR}/src/core/util.c)
target_include_directories(trace_unit PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include)
target_compile_definitions(trace_unit PRIVATE _GNU_SOURCE)
target_link_libraries(trace_unit PRIVATE Threads::Threads)
add_dependencies(mprof_sanitizer_tests trace_unit)

add_test(NAME dump_unit COMMAND dump_unit)
add_test(NAME trace_unit COMMAND trace_unit)
set_tests_properties(dump_unit trace_unit PROPERTIES LABELS "unit;sanitize" TIMEOUT 120)

# ------------------------------------------------------------ end to end
# Not in sanitizer builds: the profiler interposes malloc, as the
# sanitizers do.
if(NOT MPROF_SANITIZE)
  # -fno-builtin: the compiler must not elide the malloc/free pairs the
  # checks look for; -O1 -g and noinline sites for exact lines.
  set(MPROF_TRACE_DUMP_COPTS -O1 -g -fno-builtin -fno-reorder-blocks-and-partition)

  # Knows nothing of mprof: traced under LD_PRELOAD.
  add_executable(trace_target ${MPROF_TEST_DIR}/trace_target.c)
  target_compile_options(trace_target PRIVATE ${MPROF_TRACE_DUMP_COPTS})
  target_link_libraries(trace_target PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
  # Loaded by trace_target with dlopen, after tracing has started.
  add_library(trace_dl_lib MODULE ${MPROF_TEST_DIR}/trace_dl_lib.c)
  target_compile_options(trace_dl_lib PRIVATE ${MPROF_TRACE_DUMP_COPTS})

  # Links libmprof and calls mprof_write_heap_dump itself.
  add_executable(dump_target ${MPROF_TEST_DIR}/dump_target.c)
  target_compile_options(dump_target PRIVATE ${MPROF_TRACE_DUMP_COPTS})
  target_link_libraries(dump_target PRIVATE mprof_shared)

  add_test(NAME trace_alloc
    COMMAND bash ${MPROF_TEST_DIR}/trace_check.sh ${MPROF_LIB} $<TARGET_FILE:trace_target>
            $<TARGET_FILE:trace_dl_lib>)
  add_test(NAME dump_heap
    COMMAND bash ${MPROF_TEST_DIR}/dump_check.sh ${MPROF_LIB} $<TARGET_FILE:dump_target>
            ${MPROF_CLI})
  set_tests_properties(trace_alloc dump_heap PROPERTIES LABELS "trace_dump" TIMEOUT 240)
endif()
