# Uncontended lock/unlock workload of bench/contention_bench.sh: a plain
# program; the profiler is applied from outside with LD_PRELOAD.
add_executable(contention_bench ${CMAKE_CURRENT_LIST_DIR}/contention_bench.c)
target_link_libraries(contention_bench PRIVATE Threads::Threads)
