# The toy garbage-collected runtime (examples/toy_gc/): how a runtime that
# owns its heap reports to mprof.  The runtime is a small library, used by
# the demo program and by tests/gc/test_gc_runtime.c.
add_library(toy_gc STATIC ${CMAKE_CURRENT_LIST_DIR}/toy_gc/toy_gc.c)
target_include_directories(toy_gc PUBLIC ${CMAKE_CURRENT_LIST_DIR}/toy_gc)
target_compile_definitions(toy_gc PRIVATE _GNU_SOURCE) # pthread_rwlockattr_setkind_np
target_compile_options(toy_gc PRIVATE -O2 -g)
target_link_libraries(toy_gc PUBLIC mprof_shared Threads::Threads)

add_executable(toy_gc_demo ${CMAKE_CURRENT_LIST_DIR}/toy_gc/main.c)
target_compile_options(toy_gc_demo PRIVATE -O2 -g)
target_link_libraries(toy_gc_demo PRIVATE toy_gc)
