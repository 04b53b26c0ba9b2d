# Contention (block, mutex), thread-creation and all-thread-stack profiles
# (issue 5, first part).  Included from tests/CMakeLists.txt, where
# MPROF_TEST_DIR, MPROF_LIB and MPROF_CLI are set.
#
# Every test runs a program whose truth is known (contention_target.c,
# threads_target.c, stacks_target.c) and reads the profiles with the real
# `go tool pprof`; the scripts give it a private HOME and GOCACHE.  None is
# built for sanitizer runs: the profiler interposes pthread functions, as
# the sanitizers do.

find_program(MPROF_GO_FOR_CONTENTION go)
if(NOT MPROF_GO_FOR_CONTENTION)
  set(MPROF_GO_FOR_CONTENTION go) # the tests fail and say so, rather than vanish
endif()

if(NOT MPROF_SANITIZE)
  # Knows nothing of mprof (but for dlsym in its "off" and "stress" modes):
  # profiled with LD_PRELOAD and MPROF_* only.  -O1 -g: named functions and
  # line tables; the marked functions are noinline.
  add_executable(contention_target ${MPROF_TEST_DIR}/contention_target.c)
  target_compile_options(contention_target PRIVATE -O1 -g)
  target_link_libraries(contention_target PRIVATE Threads::Threads ${CMAKE_DL_LIBS})

  add_executable(threads_target ${MPROF_TEST_DIR}/threads_target.c)
  target_compile_options(threads_target PRIVATE -O1 -g)
  target_link_libraries(threads_target PRIVATE Threads::Threads)
  # The same program linked with libmprof.a: the profile must come without
  # LD_PRELOAD (the static archive must keep threadcreate.o in).
  add_executable(threads_target_static ${MPROF_TEST_DIR}/threads_target.c)
  target_compile_options(threads_target_static PRIVATE -O1 -g)
  target_link_libraries(threads_target_static PRIVATE mprof_static Threads::Threads)

  # Calls mprof_stack and mprof_write_goroutine_profile_fd: linked with the
  # shared library.
  add_executable(stacks_target ${MPROF_TEST_DIR}/stacks_target.c)
  target_compile_options(stacks_target PRIVATE -O1 -g)
  target_compile_definitions(stacks_target PRIVATE _GNU_SOURCE)
  target_link_libraries(stacks_target PRIVATE mprof_shared Threads::Threads)

  set(MPROF_CONTENTION_ENV "MPROF_GO=${MPROF_GO_FOR_CONTENTION}")
  set(CT $<TARGET_FILE:contention_target>)
  set(CT_SRC ${MPROF_TEST_DIR}/contention_target.c)

  add_test(NAME contention_mutex
    COMMAND sh ${MPROF_TEST_DIR}/contention_mutex.sh ${MPROF_LIB} ${CT} ${CT_SRC})
  add_test(NAME contention_cond
    COMMAND sh ${MPROF_TEST_DIR}/contention_cond.sh ${MPROF_LIB} ${CT} ${CT_SRC})
  add_test(NAME contention_off
    COMMAND sh ${MPROF_TEST_DIR}/contention_off.sh ${MPROF_LIB} ${CT})
  add_test(NAME contention_http
    COMMAND sh ${MPROF_TEST_DIR}/contention_http.sh ${MPROF_LIB} ${CT})
  add_test(NAME contention_cli
    COMMAND sh ${MPROF_TEST_DIR}/contention_cli.sh ${MPROF_CLI} ${CT} ${CT_SRC})
  add_test(NAME threads_create
    COMMAND sh ${MPROF_TEST_DIR}/threads_create.sh ${MPROF_LIB}
      $<TARGET_FILE:threads_target> $<TARGET_FILE:threads_target_static>
      ${MPROF_TEST_DIR}/threads_target.c)
  add_test(NAME stacks_all
    COMMAND sh ${MPROF_TEST_DIR}/stacks_all.sh $<TARGET_FILE:stacks_target>
      ${MPROF_TEST_DIR}/stacks_target.c)

  set(MPROF_CONTENTION_TESTS contention_mutex contention_cond contention_off contention_http
    contention_cli threads_create stacks_all)
  set_tests_properties(${MPROF_CONTENTION_TESTS} PROPERTIES
    LABELS "contention" ENVIRONMENT "${MPROF_CONTENTION_ENV}" TIMEOUT 240)
  # Their truth is measured in milliseconds of waiting: keep `ctest -j` from
  # starving the threads that hold the locks.
  set_tests_properties(contention_mutex contention_cond contention_cli PROPERTIES RUN_SERIAL TRUE)
endif()
