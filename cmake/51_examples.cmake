# examples/*: the small C++ programs each example runs on the client library
# (built into build/examples/; their tests, examples/*/test.sh, run them).
file(GLOB WORKFLOW_EXAMPLE_PROGRAMS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/examples/*/*_demo.cpp)
foreach(src IN LISTS WORKFLOW_EXAMPLE_PROGRAMS)
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/examples)
  target_link_libraries(${name} PRIVATE workflow_client)
  target_compile_options(${name} PRIVATE -Wall -Wextra)
endforeach()
