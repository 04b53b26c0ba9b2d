# Live profiling tests: the /debug/pprof server and numbered profile files on
# signal and interval.  Included from tests/CMakeLists.txt, where
# MPROF_TEST_DIR, MPROF_LIB and MPROF_CLI are set.

# Unit tests: the parsers, the server loop and the dump thread, built from
# their sources with stand-ins for the sampler and the heap writer (see
# test_http_stubs.c), so that they also run under ASan/UBSan and TSan.
if(NOT TARGET mprof_sanitizer_tests)
  add_custom_target(mprof_sanitizer_tests)
endif()

set(MPROF_HTTP_UNIT_SOURCES
  ${CMAKE_SOURCE_DIR}/src/http/http_request.c
  ${CMAKE_SOURCE_DIR}/src/profiles/snapshots.c
  ${CMAKE_SOURCE_DIR}/src/profiles/registry.c
  ${CMAKE_SOURCE_DIR}/src/core/text.c
  ${CMAKE_SOURCE_DIR}/src/core/util.c
  ${MPROF_TEST_DIR}/test_http_stubs.c)

# (Loop variables are prefixed: every tests/*.cmake shares one scope.)
foreach(mprof_http_unit test_http_request test_http_server test_http_dumps)
  set(mprof_http_extra "")
  if(mprof_http_unit STREQUAL "test_http_server")
    set(mprof_http_extra ${CMAKE_SOURCE_DIR}/src/http/http_server.c)
  endif()
  add_executable(${mprof_http_unit} ${MPROF_TEST_DIR}/${mprof_http_unit}.c
    ${MPROF_HTTP_UNIT_SOURCES} ${mprof_http_extra})
  target_include_directories(${mprof_http_unit} PRIVATE
    ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include)
  target_compile_definitions(${mprof_http_unit} PRIVATE _GNU_SOURCE)
  target_link_libraries(${mprof_http_unit} PRIVATE Threads::Threads m)
  add_dependencies(mprof_sanitizer_tests ${mprof_http_unit})
endforeach()

add_test(NAME http_request COMMAND test_http_request)
add_test(NAME http_server COMMAND test_http_server)
add_test(NAME http_dumps_unit COMMAND test_http_dumps)
set_tests_properties(http_request http_server http_dumps_unit PROPERTIES
  LABELS "unit;sanitize" TIMEOUT 120)

# End to end: an unmodified program under LD_PRELOAD, read with curl and
# the real `go tool pprof`.  Not in sanitizer builds: the profiler
# interposes malloc and pthread_create, as the sanitizers do.
if(NOT MPROF_SANITIZE)
  add_executable(test_http_target ${MPROF_TEST_DIR}/test_http_target.c)
  # Frame pointers and line tables for readable stacks; -O1 keeps the
  # named functions from being inlined away (they are noinline anyway).
  target_compile_options(test_http_target PRIVATE -O1 -g)

  foreach(mprof_http_script http_endpoints http_hostile http_dumps)
    add_test(NAME ${mprof_http_script}
      COMMAND bash ${MPROF_TEST_DIR}/${mprof_http_script}.sh ${MPROF_LIB}
              $<TARGET_FILE:test_http_target>)
    set_tests_properties(${mprof_http_script} PROPERTIES LABELS "http" TIMEOUT 240)
  endforeach()
endif()
