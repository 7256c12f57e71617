# `workflow serve` (src/cli/serve/): the dashboard and /metrics, on Debian's
# cpp-httplib (libcpp-httplib-dev, compiled library + pkg-config file).
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
file(GLOB WORKFLOW_SERVE_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/cli/serve/*.cpp)
target_sources(workflow_cli PRIVATE ${WORKFLOW_SERVE_SOURCES})
target_link_libraries(workflow_cli PRIVATE PkgConfig::HTTPLIB)
# Debian trixie/sid build cpp-httplib with OpenSSL and its pkg-config file
# names it only for static links: link OpenSSL where it is present.
find_package(OpenSSL QUIET)
if(OpenSSL_FOUND)
  target_link_libraries(workflow_cli PRIVATE OpenSSL::SSL OpenSSL::Crypto)
endif()
