# src/core: pure C++17, no PostgreSQL headers, unit-tested without a server.
file(GLOB WORKFLOW_CORE_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/core/*.cpp)
add_library(workflow_core STATIC ${WORKFLOW_CORE_SOURCES})
target_include_directories(workflow_core PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_compile_options(workflow_core PRIVATE -Wall -Wextra)

# One GoogleTest binary per test/unit/*_test.cpp file.
file(GLOB WORKFLOW_UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/test/unit/*_test.cpp)
foreach(src IN LISTS WORKFLOW_UNIT_TESTS)
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE workflow_core GTest::gtest_main)
  add_test(NAME unit.${name} COMMAND ${name})
endforeach()
