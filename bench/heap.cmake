add_executable(heap_churn ${CMAKE_CURRENT_LIST_DIR}/heap_churn.c)
target_include_directories(heap_churn PRIVATE ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(heap_churn PRIVATE Threads::Threads ${CMAKE_DL_LIBS} m)
