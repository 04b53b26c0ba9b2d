# Helper of bench/user_cost_bench.sh (profile writes, a live process to
# scrape, the profiler's memory).  Plain program: it finds what it asks of
# libmprof with dlsym and is profiled from outside with LD_PRELOAD; no
# sibling calls, so its 36 call stacks stay distinct.
add_executable(user_cost ${CMAKE_CURRENT_LIST_DIR}/user_cost.c)
target_include_directories(user_cost PRIVATE ${PROJECT_SOURCE_DIR}/include)
target_compile_options(user_cost PRIVATE -fno-optimize-sibling-calls)
target_link_libraries(user_cost PRIVATE Threads::Threads ${CMAKE_DL_LIBS} m)
