# The embedding API for garbage-collected runtimes (seed 002's cycle
# protocol), tested through the toy collector of examples/toy_gc.
# Included from tests/CMakeLists.txt, where MPROF_TEST_DIR is set.
#
# Not in sanitizer builds: the program links libmprof, which interposes
# malloc, as the sanitizers do.
if(NOT MPROF_SANITIZE)
  find_program(MPROF_GO_FOR_GC go)
  if(NOT MPROF_GO_FOR_GC)
    set(MPROF_GO_FOR_GC go) # the test fails and says so, rather than vanish
  endif()

  add_executable(test_gc_runtime ${MPROF_TEST_DIR}/test_gc_runtime.c)
  target_compile_definitions(test_gc_runtime PRIVATE _GNU_SOURCE) # dladdr1
  target_compile_options(test_gc_runtime PRIVATE -O2 -g -fno-reorder-blocks-and-partition)
  # -rdynamic: the test finds its site functions' extents with dladdr1.
  set_target_properties(test_gc_runtime PROPERTIES ENABLE_EXPORTS ON)
  target_link_libraries(test_gc_runtime PRIVATE toy_gc Threads::Threads ${CMAKE_DL_LIBS})

  add_test(NAME gc_runtime_consistency COMMAND test_gc_runtime)
  set_tests_properties(gc_runtime_consistency PROPERTIES LABELS "gc" TIMEOUT 240
    ENVIRONMENT "MPROF_RATE=1;MPROF_GO=${MPROF_GO_FOR_GC}")
endif()
