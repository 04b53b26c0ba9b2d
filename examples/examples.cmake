add_executable(leaky_cache ${CMAKE_CURRENT_LIST_DIR}/leaky_cache.c)
target_compile_options(leaky_cache PRIVATE -O2 -g)
target_link_libraries(leaky_cache PRIVATE m)
