# Real programs nobody here wrote, profiled without being rebuilt: Debian's
# sqlite3, python3 and git, under `mprof run` and under plain LD_PRELOAD.
# Output and exit status must be what they are without mprof; profiles must
# be valid for the real `go tool pprof`, show the programs' exported entry
# points by name and never name an address with a symbol that does not
# contain it.  Included from tests/CMakeLists.txt (MPROF_TEST_DIR, MPROF_LIB
# and MPROF_CLI are set there).  The scripts share tests/core_lib.sh and
# tests/core_pprof.py with the core tests.
if(NOT MPROF_SANITIZE)
  find_program(MPROF_GO_FOR_REALPROG go)
  if(NOT MPROF_GO_FOR_REALPROG)
    set(MPROF_GO_FOR_REALPROG go)
  endif()
  # Debian's python3 for the helper script: fast to start, unlike a version
  # manager's shim that may come first in PATH.
  find_program(MPROF_PYTHON_FOR_REALPROG python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT MPROF_PYTHON_FOR_REALPROG)
    find_program(MPROF_PYTHON_FOR_REALPROG python3)
  endif()
  set(MPROF_REALPROG_ENV "MPROF_GO=${MPROF_GO_FOR_REALPROG}"
    "MPROF_PYTHON=${MPROF_PYTHON_FOR_REALPROG}")

  add_test(NAME realprog_sqlite
    COMMAND sh ${MPROF_TEST_DIR}/realprog_sqlite.sh ${MPROF_LIB} ${MPROF_CLI})
  add_test(NAME realprog_python
    COMMAND sh ${MPROF_TEST_DIR}/realprog_python.sh ${MPROF_LIB} ${MPROF_CLI})
  add_test(NAME realprog_git
    COMMAND sh ${MPROF_TEST_DIR}/realprog_git.sh ${MPROF_LIB} ${MPROF_CLI} main)
  # MPROF_HEAP without %p across fork+exec (git runs git, the shell runs
  # everything): each process below the top one must get FILE.<pid>.
  add_test(NAME realprog_git_nopid
    COMMAND sh ${MPROF_TEST_DIR}/realprog_git.sh ${MPROF_LIB} ${MPROF_CLI} nopid)
  set_tests_properties(realprog_sqlite realprog_python realprog_git realprog_git_nopid
    PROPERTIES LABELS "realprog;pprof" TIMEOUT 240 ENVIRONMENT "${MPROF_REALPROG_ENV}")
endif()
