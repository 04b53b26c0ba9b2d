# Tests of the mprof command-line tool (src/cli).
#
# The tool reads profiles on its own, so only cli_run_profiler needs the
# profiler library and only cli_top_vs_pprof needs Go (it is skipped
# without it).  Labels: "unit" for the pure-C tests, "cli" for all of them,
# "sanitize" for those worth repeating under ASan/TSan (the decoder reads
# untrusted files).
set(MPROF_CLI_SOURCE_DIR ${CMAKE_SOURCE_DIR}/src/cli)

# The CLI's pure parts (reader, units, report), tested without main().
add_executable(cli_unit_tests
  ${MPROF_TEST_DIR}/cli_unit_tests.c
  ${MPROF_CLI_SOURCE_DIR}/profile_reader.c
  ${MPROF_CLI_SOURCE_DIR}/units.c
  ${MPROF_CLI_SOURCE_DIR}/top_report.c)
target_include_directories(cli_unit_tests PRIVATE ${CMAKE_SOURCE_DIR}/src ${MPROF_TEST_DIR})
target_compile_definitions(cli_unit_tests PRIVATE _GNU_SOURCE)
target_link_libraries(cli_unit_tests PRIVATE ZLIB::ZLIB m)
add_test(NAME cli_unit COMMAND cli_unit_tests)
set_tests_properties(cli_unit PROPERTIES LABELS "unit;cli;sanitize")

# Synthetic profiles (drop_frames, inlining, units...) for the shell tests.
add_executable(cli_synth_profiles ${MPROF_TEST_DIR}/cli_synth_profiles.c)
target_include_directories(cli_synth_profiles PRIVATE ${MPROF_TEST_DIR})
target_link_libraries(cli_synth_profiles PRIVATE ZLIB::ZLIB)

# A stand-in for libmprof.so that reports the environment it was preloaded
# with, so `mprof run` is tested independently of the profiler.
add_library(cli_dummy_preload SHARED ${MPROF_TEST_DIR}/cli_dummy_preload.c)

add_test(NAME cli_help
  COMMAND sh ${MPROF_TEST_DIR}/cli_help.sh $<TARGET_FILE:mprof_cli> ${CMAKE_SOURCE_DIR}/docs/cli.md)
set_tests_properties(cli_help PROPERTIES LABELS "cli")

add_test(NAME cli_corrupt
  COMMAND sh ${MPROF_TEST_DIR}/cli_corrupt.sh $<TARGET_FILE:mprof_cli>
          $<TARGET_FILE:cli_synth_profiles>)
set_tests_properties(cli_corrupt PROPERTIES LABELS "cli;sanitize")

add_test(NAME cli_top_vs_pprof
  COMMAND sh ${MPROF_TEST_DIR}/cli_top_vs_pprof.sh $<TARGET_FILE:mprof_cli>
          $<TARGET_FILE:cli_synth_profiles> ${MPROF_TEST_DIR}/cli_goprof.go)
set_tests_properties(cli_top_vs_pprof PROPERTIES LABELS "cli" SKIP_RETURN_CODE 77)

add_test(NAME cli_run
  COMMAND sh ${MPROF_TEST_DIR}/cli_run.sh $<TARGET_FILE:mprof_cli>
          $<TARGET_FILE:cli_dummy_preload>)
set_tests_properties(cli_run PROPERTIES LABELS "cli")

add_test(NAME cli_run_profiler
  COMMAND sh ${MPROF_TEST_DIR}/cli_run_profiler.sh $<TARGET_FILE:mprof_cli>
          $<TARGET_FILE:mprof_shared>)
set_tests_properties(cli_run_profiler PROPERTIES LABELS "cli;integration")

# The sanitizer builds (make check-sanitizers) build mprof_sanitizer_tests
# and run the "sanitize" label: that target must build what those tests run.
if(NOT TARGET mprof_sanitizer_tests)
  add_custom_target(mprof_sanitizer_tests)
endif()
add_dependencies(mprof_sanitizer_tests cli_unit_tests cli_synth_profiles mprof_cli)

add_test(NAME cli_run_trace_heapdump
  COMMAND ${MPROF_TEST_DIR}/cli_run_trace.sh $<TARGET_FILE:mprof_cli> $<TARGET_FILE:leaky_cache>)
set_tests_properties(cli_run_trace_heapdump PROPERTIES LABELS "cli;integration")
