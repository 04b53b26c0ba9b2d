# Tests of the profile encoder (src/pprof_builder.c) and the symbolizer
# (src/symbolize.c).  Included from tests/CMakeLists.txt.
#
# The test programs link the static library, so only the objects they use
# (builder, symbolizer, util) are pulled in.  They are C programs that also
# carry one C++ function (encoder_cxx.cpp, built without exceptions and RTTI
# and linked by the C driver): the symbolizer must find __cxa_demangle with
# no libstdc++ loaded by the program.

if(NOT TARGET mprof_sanitizer_tests)
  add_custom_target(mprof_sanitizer_tests)
endif()

foreach(t test_symbolize test_encoder)
  add_executable(${t} ${MPROF_TEST_DIR}/${t}.c ${MPROF_TEST_DIR}/encoder_cxx.cpp)
  target_include_directories(${t} PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_compile_definitions(${t} PRIVATE _GNU_SOURCE)
  # -g for the line tables the tests check; no hot/cold splitting so that a
  # function's call sites stay inside its symbol.
  target_compile_options(${t} PRIVATE -g -fno-reorder-blocks-and-partition
    $<$<COMPILE_LANGUAGE:CXX>:-fno-exceptions -fno-rtti>)
  set_target_properties(${t} PROPERTIES LINKER_LANGUAGE C)
  target_link_libraries(${t} PRIVATE mprof_static)
  add_dependencies(mprof_sanitizer_tests ${t})
endforeach()

add_test(NAME encoder_symbolize COMMAND test_symbolize)
add_test(NAME encoder_unit COMMAND test_encoder)
set_tests_properties(encoder_symbolize encoder_unit PROPERTIES LABELS "unit;sanitize")

# The real reader: `go tool pprof` must accept our files and show our names
# and lines with the binary gone.
add_test(NAME encoder_pprof
  COMMAND sh ${MPROF_TEST_DIR}/encoder_pprof_check.sh $<TARGET_FILE:test_encoder>)
set_tests_properties(encoder_pprof PROPERTIES LABELS "pprof")
