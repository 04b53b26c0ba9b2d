# Installation and packaging, included by the root CMakeLists.txt after the
# targets exist.  `make install PREFIX=DIR` (cmake --install) puts in DIR:
#   bin/mprof                           the CLI
#   lib/<multiarch>/libmprof.so, .a     the library, to preload or link
#   include/mprof.h                     the API
#   lib/<multiarch>/pkgconfig/mprof.pc, mprof-static.pc
#   lib/<multiarch>/cmake/mprof/        find_package(mprof): mprof::mprof,
#                                       mprof::mprof_static, mprof::cli
#   share/man/man1/mprof.1              from src/shared/options.def
# Every installed file names its neighbours relative to itself (the .pc
# files through ${pcfiledir}, the CMake files through their own location,
# `mprof run` through /proc/self/exe), so the tree works wherever it is
# installed or unpacked: `cmake --install --prefix` needs no reconfigure
# and the .deb (`make deb`, CPack, below) is the same tree under /usr.
include(CMakePackageConfigHelpers)

set_target_properties(mprof_shared PROPERTIES EXPORT_NAME mprof)
set_target_properties(mprof_static PROPERTIES EXPORT_NAME mprof_static)
set_target_properties(mprof_cli PROPERTIES EXPORT_NAME cli)
install(TARGETS mprof_shared mprof_static mprof_cli EXPORT mprofTargets
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/mprof.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(MPROF_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/mprof)
install(EXPORT mprofTargets NAMESPACE mprof:: DESTINATION ${MPROF_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/mprofConfig.cmake.in
  ${PROJECT_BINARY_DIR}/mprofConfig.cmake INSTALL_DESTINATION ${MPROF_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/mprofConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/mprofConfig.cmake ${PROJECT_BINARY_DIR}/mprofConfigVersion.cmake
  DESTINATION ${MPROF_CMAKE_DIR})

# pkg-config.  The prefix is found from the .pc file's own folder, as many
# levels up as the library folder is deep (lib/x86_64-linux-gnu/pkgconfig:
# three).  What a static link of libmprof.a needs besides: libdw (DWARF
# lines and inlines; it brings libelf) and zlib (gzip), by their own .pc
# files; libm (llround), libgcc_s (_Unwind_Backtrace: gcc and clang add it
# by themselves, it is listed for other drivers); -pthread and -ldl for a
# glibc older than 2.34.  tests/install/install_consumers.sh links with
# exactly these lines.
set(MPROF_PKGCONFIG_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
file(RELATIVE_PATH MPROF_PC_TO_PREFIX ${CMAKE_INSTALL_PREFIX}/${MPROF_PKGCONFIG_DIR} ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" MPROF_PC_TO_PREFIX "${MPROF_PC_TO_PREFIX}")
set(MPROF_PC_PRIVATE_LIBS "-pthread -ldl -lm -lgcc_s")
foreach(pc mprof mprof-static)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/${pc}.pc.in ${PROJECT_BINARY_DIR}/${pc}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/${pc}.pc DESTINATION ${MPROF_PKGCONFIG_DIR})
endforeach()

# The manual page, from the options table through the CLI's own markdown
# tables, regenerated when the CLI (whose help prints the table) changes.
add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/mprof.1
  COMMAND sh ${PROJECT_SOURCE_DIR}/scripts/man-page.sh $<TARGET_FILE:mprof_cli> ${PROJECT_BINARY_DIR}/mprof.1
  DEPENDS mprof_cli ${PROJECT_SOURCE_DIR}/scripts/man-page.sh
  COMMENT "Generating mprof.1 from src/shared/options.def")
add_custom_target(mprof_man ALL DEPENDS ${PROJECT_BINARY_DIR}/mprof.1)
install(FILES ${PROJECT_BINARY_DIR}/mprof.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

# The Debian package (make deb): the same install tree under /usr.  Its
# dependencies are what dpkg-shlibdeps finds the binaries linked against
# (libc6, libdw1, libelf1, zlib1g, libgcc-s1).
if(MPROF_TOP_LEVEL)
  set(CPACK_GENERATOR DEB)
  set(CPACK_PACKAGE_NAME mprof)
  set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
  set(CPACK_PACKAGE_CONTACT "mprof maintainers <mprof@localhost>")
  set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "sampling heap and CPU profiler for native C/C++ programs")
  set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
  set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
  set(CPACK_DEBIAN_PACKAGE_SECTION devel)
  find_program(MPROF_DPKG_SHLIBDEPS dpkg-shlibdeps)
  if(MPROF_DPKG_SHLIBDEPS)
    set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  else() # no dpkg-dev: the same list, by hand
    set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6 (>= 2.35), libdw1, libelf1, zlib1g, libgcc-s1")
  endif()
  set(CPACK_DEBIAN_PACKAGE_SUGGESTS "golang-go, libdw-dev, zlib1g-dev")
  include(CPack)
endif()
