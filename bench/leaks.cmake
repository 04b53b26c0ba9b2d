# Helper of bench/leaks_bench.sh: the same program built plain (run alone,
# under mprof --leaks and under valgrind) and with -fsanitize=leak.
add_executable(leaks_work ${CMAKE_CURRENT_LIST_DIR}/leaks_work.c)
target_compile_options(leaks_work PRIVATE -O2 -g)
add_executable(leaks_work_lsan ${CMAKE_CURRENT_LIST_DIR}/leaks_work.c)
target_compile_options(leaks_work_lsan PRIVATE -O2 -g -fsanitize=leak)
target_link_options(leaks_work_lsan PRIVATE -fsanitize=leak)
