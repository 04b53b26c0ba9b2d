# The heap profiler end to end: the seed's memory-profiler test through the
# API and through LD_PRELOAD, the same for C++, and accuracy at the default
# rate.  Each runs the real `go tool pprof` on what we wrote.

add_executable(memprof_target_api ${MPROF_TEST_DIR}/memprof_target.c)
target_compile_definitions(memprof_target_api PRIVATE MPROF_TARGET_API)
target_compile_options(memprof_target_api PRIVATE -O2 -g)
target_link_libraries(memprof_target_api PRIVATE mprof_shared)

add_executable(memprof_target_plain ${MPROF_TEST_DIR}/memprof_target.c)
target_compile_options(memprof_target_plain PRIVATE -O2 -g -fomit-frame-pointer)

add_test(NAME heap_memprofiler_api
  COMMAND ${MPROF_TEST_DIR}/memprof_check.sh api $<TARGET_FILE:memprof_target_api>
          ${MPROF_LIB} ${MPROF_TEST_DIR}/memprof_target.c)
add_test(NAME heap_memprofiler_preload
  COMMAND ${MPROF_TEST_DIR}/memprof_check.sh preload $<TARGET_FILE:memprof_target_plain>
          ${MPROF_LIB} ${MPROF_TEST_DIR}/memprof_target.c)
set_tests_properties(heap_memprofiler_api heap_memprofiler_preload PROPERTIES LABELS "heap")

add_executable(memprof_cxx ${MPROF_TEST_DIR}/memprof_cxx.cpp)
target_compile_options(memprof_cxx PRIVATE -O2 -g -fomit-frame-pointer)
add_test(NAME heap_memprofiler_cxx
  COMMAND ${MPROF_TEST_DIR}/memprof_cxx_check.sh $<TARGET_FILE:memprof_cxx> ${MPROF_LIB}
          ${MPROF_TEST_DIR}/memprof_cxx.cpp)
set_tests_properties(heap_memprofiler_cxx PROPERTIES LABELS "heap")

add_executable(accuracy_target ${MPROF_TEST_DIR}/accuracy_target.c)
target_compile_options(accuracy_target PRIVATE -O2 -g)
add_test(NAME heap_accuracy_default_rate
  COMMAND ${MPROF_TEST_DIR}/accuracy_check.sh $<TARGET_FILE:accuracy_target> ${MPROF_LIB})
set_tests_properties(heap_accuracy_default_rate PROPERTIES LABELS "heap")

add_test(NAME heap_bad_settings
  COMMAND ${MPROF_TEST_DIR}/badinput_check.sh $<TARGET_FILE:leaky_cache> ${MPROF_LIB})
set_tests_properties(heap_bad_settings PROPERTIES LABELS "heap")
