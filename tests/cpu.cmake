# CPU profiler tests (issue 3).  Included from tests/CMakeLists.txt, where
# MPROF_TEST_DIR, MPROF_LIB and MPROF_CLI are set.
#
# The profile checks read the profiles with the real `go tool pprof`; the
# scripts give it a private HOME and GOCACHE.

find_program(MPROF_GO_FOR_CPU go)
if(NOT MPROF_GO_FOR_CPU)
  set(MPROF_GO_FOR_CPU go) # the test fails and says so, rather than vanish
endif()

# Pure logic, also run under ASan and TSan (make check-sanitizers).
if(NOT TARGET mprof_sanitizer_tests)
  add_custom_target(mprof_sanitizer_tests)
endif()
add_executable(test_cpu_ring ${MPROF_TEST_DIR}/test_cpu_ring.c)
target_include_directories(test_cpu_ring PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(test_cpu_ring PRIVATE Threads::Threads)
add_dependencies(mprof_sanitizer_tests test_cpu_ring)
add_test(NAME cpu_ring COMMAND test_cpu_ring)

# threads.c on its own (with a stand-in arena): its pthread_create wrapper
# then wraps the sanitizer's.
add_executable(test_cpu_thread_hooks ${MPROF_TEST_DIR}/test_cpu_thread_hooks.c
  ${CMAKE_SOURCE_DIR}/src/interpose/threads.c)
target_include_directories(test_cpu_thread_hooks PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include)
target_compile_definitions(test_cpu_thread_hooks PRIVATE _GNU_SOURCE)
target_link_libraries(test_cpu_thread_hooks PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
add_dependencies(mprof_sanitizer_tests test_cpu_thread_hooks)
add_test(NAME cpu_thread_hooks COMMAND test_cpu_thread_hooks)
set_tests_properties(cpu_ring cpu_thread_hooks PROPERTIES LABELS "unit;sanitize" TIMEOUT 120)

# The profiler itself is not built for sanitizer runs of the unit tests
# (it interposes malloc and pthread_create, as the sanitizers do).
if(NOT MPROF_SANITIZE)
  # Programs profiled through the API, one linked with the shared library,
  # one with the static archive (which must interpose pthread_create too).
  add_executable(test_cpu_split ${MPROF_TEST_DIR}/test_cpu_split.c)
  target_link_libraries(test_cpu_split PRIVATE mprof_shared Threads::Threads)

  add_executable(test_cpu_threads ${MPROF_TEST_DIR}/test_cpu_threads.c)
  target_link_libraries(test_cpu_threads PRIVATE mprof_static Threads::Threads)

  add_executable(test_cpu_api ${MPROF_TEST_DIR}/test_cpu_api.c)
  target_link_libraries(test_cpu_api PRIVATE mprof_shared Threads::Threads)

  # Knows nothing of mprof: profiled with LD_PRELOAD and MPROF_CPU only.
  add_executable(test_cpu_stress ${MPROF_TEST_DIR}/test_cpu_stress.c)
  target_link_libraries(test_cpu_stress PRIVATE Threads::Threads ${CMAKE_DL_LIBS})

  set(MPROF_CPU_TEST_ENV "MPROF_GO=${MPROF_GO_FOR_CPU}")

  add_test(NAME cpu_split
    COMMAND sh ${MPROF_TEST_DIR}/cpu_split.sh $<TARGET_FILE:test_cpu_split>)
  add_test(NAME cpu_threads
    COMMAND sh ${MPROF_TEST_DIR}/cpu_threads.sh $<TARGET_FILE:test_cpu_threads>)
  add_test(NAME cpu_api
    COMMAND sh ${MPROF_TEST_DIR}/cpu_api.sh $<TARGET_FILE:test_cpu_api>)
  add_test(NAME cpu_env
    COMMAND sh ${MPROF_TEST_DIR}/cpu_env.sh ${MPROF_LIB} $<TARGET_FILE:test_cpu_stress>)
  add_test(NAME cpu_stress
    COMMAND sh ${MPROF_TEST_DIR}/cpu_stress.sh ${MPROF_LIB} $<TARGET_FILE:test_cpu_stress>)
  set_tests_properties(cpu_split cpu_threads cpu_api cpu_env cpu_stress PROPERTIES
    LABELS "cpu" ENVIRONMENT "${MPROF_CPU_TEST_ENV}" TIMEOUT 240)
  # Timing-sensitive: run them alone so that `ctest -j` does not take their
  # cores away.
  set_tests_properties(cpu_split cpu_threads PROPERTIES RUN_SERIAL TRUE)
endif()
