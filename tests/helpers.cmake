# The helpers every part of mprof shares, one copy each: core/os.h,
# core/hash.h and shared/bytebuf.h (the protobuf wire encoder).  Header-only
# code, so the test compiles on its own and runs under ASan and TSan too.
# Included from tests/CMakeLists.txt.

if(NOT TARGET mprof_sanitizer_tests)
  add_custom_target(mprof_sanitizer_tests)
endif()

add_executable(test_core_helpers ${MPROF_TEST_DIR}/test_core_helpers.c)
target_include_directories(test_core_helpers PRIVATE ${CMAKE_SOURCE_DIR}/src ${MPROF_TEST_DIR})
target_compile_definitions(test_core_helpers PRIVATE _GNU_SOURCE)
# -rdynamic: the lookup test needs a definition of ours in the global scope.
set_target_properties(test_core_helpers PROPERTIES ENABLE_EXPORTS ON)
target_link_libraries(test_core_helpers PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
add_dependencies(mprof_sanitizer_tests test_core_helpers)
add_test(NAME core_helpers COMMAND test_core_helpers)
set_tests_properties(core_helpers PROPERTIES LABELS "unit;sanitize" TIMEOUT 120)
