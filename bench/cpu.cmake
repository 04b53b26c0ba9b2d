# CPU profiler benchmark workload (bench/cpu_bench.sh).  Plain program: the
# profilers under comparison are applied from outside.
add_executable(cpu_bench_work ${CMAKE_CURRENT_LIST_DIR}/cpu_work.c)
target_include_directories(cpu_bench_work PRIVATE ${PROJECT_SOURCE_DIR}/tests/cpu)
target_link_libraries(cpu_bench_work PRIVATE Threads::Threads)
