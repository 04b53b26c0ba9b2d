# The public API of include/mprof.h: the registry's write functions for
# every kind, their return shape, the stats struct's size field, the
# version.  Linked against libmprof as a program would be.
if(NOT MPROF_SANITIZE)
  add_executable(test_api ${MPROF_TEST_DIR}/test_api.c)
  target_compile_options(test_api PRIVATE -O1 -g)
  target_link_libraries(test_api PRIVATE mprof_shared Threads::Threads)
  add_test(NAME api_write_profiles
    COMMAND ${MPROF_TEST_DIR}/api_check.sh $<TARGET_FILE:test_api> ${MPROF_CLI})
  set_tests_properties(api_write_profiles PROPERTIES LABELS "api;pprof" TIMEOUT 120)
endif()
