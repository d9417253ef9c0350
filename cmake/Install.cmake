# `cmake --install`: the binaries (installed by their own folders), the client
# library with its public headers, and a CMake package so that another project
# can `find_package(stateside)` and link `stateside::client`.
include(CMakePackageConfigHelpers)

if(TARGET stateside_client)
  install(TARGETS stateside_client stateside_proto
          EXPORT statesideTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/client/include/
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(EXPORT statesideTargets
          NAMESPACE stateside::
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/stateside)
  configure_package_config_file(
    ${PROJECT_SOURCE_DIR}/cmake/statesideConfig.cmake.in
    ${CMAKE_CURRENT_BINARY_DIR}/statesideConfig.cmake
    INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/stateside)
  write_basic_package_version_file(
    ${CMAKE_CURRENT_BINARY_DIR}/statesideConfigVersion.cmake
    COMPATIBILITY SameMinorVersion)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/statesideConfig.cmake
                ${CMAKE_CURRENT_BINARY_DIR}/statesideConfigVersion.cmake
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/stateside)
endif()
