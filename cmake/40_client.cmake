# The client library (libpq, C++17), the `workflow` CLI, their install rules
# (headers, pkg-config file, CMake package config) and the client tests.
find_package(nlohmann_json REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Threads REQUIRED)
include(GNUInstallDirs)

file(GLOB WORKFLOW_CLIENT_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/client/*.cpp)
add_library(workflow_client SHARED ${WORKFLOW_CLIENT_SOURCES})
set_target_properties(workflow_client PROPERTIES OUTPUT_NAME workflow-client
                      VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
target_include_directories(workflow_client PUBLIC
  $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/src/client/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_link_libraries(workflow_client
  PUBLIC PkgConfig::LIBPQ nlohmann_json::nlohmann_json Threads::Threads
  PRIVATE $<BUILD_INTERFACE:workflow_core>)
target_compile_options(workflow_client PRIVATE -Wall -Wextra)

file(GLOB WORKFLOW_CLI_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/cli/*.cpp)
add_executable(workflow_cli ${WORKFLOW_CLI_SOURCES})
set_target_properties(workflow_cli PROPERTIES OUTPUT_NAME workflow)
target_link_libraries(workflow_cli PRIVATE workflow_client CLI11::CLI11 fmt::fmt spdlog::spdlog)
target_compile_options(workflow_cli PRIVATE -Wall -Wextra)

# Install: library, headers under include/workflow/, pkg-config, CMake package.
install(TARGETS workflow_client EXPORT workflow-client-targets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS workflow_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/src/client/include/workflow
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT workflow-client-targets NAMESPACE workflow::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/workflow-client)
file(RELATIVE_PATH WORKFLOW_PC_TO_PREFIX
     /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(${CMAKE_SOURCE_DIR}/src/client/workflow-client.pc.in
               ${CMAKE_BINARY_DIR}/workflow-client.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/workflow-client.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
include(CMakePackageConfigHelpers)
configure_package_config_file(${CMAKE_SOURCE_DIR}/src/client/workflow-clientConfig.cmake.in
  ${CMAKE_BINARY_DIR}/workflow-clientConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/workflow-client)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/workflow-clientConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/workflow-clientConfig.cmake
              ${CMAKE_BINARY_DIR}/workflow-clientConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/workflow-client)


# One GoogleTest binary per test/client/*_test.cpp, against the server in
# DATABASE_URL (each test makes and drops its own database). ctest: client.<name>.
file(GLOB WORKFLOW_CLIENT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/test/client/*_test.cpp)
foreach(src IN LISTS WORKFLOW_CLIENT_TESTS)
  get_filename_component(name ${src} NAME_WE)
  add_executable(client_${name} ${src})
  target_include_directories(client_${name} PRIVATE ${CMAKE_SOURCE_DIR}/test/client)
  target_link_libraries(client_${name} PRIVATE workflow_client GTest::gtest_main)
  add_test(NAME client.${name} COMMAND client_${name})
endforeach()

# The CLI end to end (health, submit, worker, watch, history, export).
add_test(NAME client.cli COMMAND ${CMAKE_SOURCE_DIR}/test/client/cli_test.sh $<TARGET_FILE:workflow_cli>)
# `worker --exec`: a command per task (success, failure, timeout, invalid JSON, hostile output).
add_test(NAME client.cli_exec COMMAND ${CMAKE_SOURCE_DIR}/test/client/cli_exec_test.sh $<TARGET_FILE:workflow_cli>)
