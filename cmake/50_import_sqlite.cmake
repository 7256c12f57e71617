# `workflow import-sqlite`: the verification pieces (src/cli/import_sqlite:
# SQLite reader on libsqlite3, PostgreSQL reader, report, pgloader run) as a
# library the CLI links, their unit test, and the end-to-end test.
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
file(GLOB WORKFLOW_IMPORT_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/cli/import_sqlite/*.cpp)
add_library(workflow_import STATIC ${WORKFLOW_IMPORT_SOURCES})
target_include_directories(workflow_import PUBLIC ${CMAKE_SOURCE_DIR}/src/cli)
target_link_libraries(workflow_import PUBLIC workflow_client PkgConfig::SQLITE3 fmt::fmt
                      nlohmann_json::nlohmann_json)
target_compile_options(workflow_import PRIVATE -Wall -Wextra)
target_link_libraries(workflow_cli PRIVATE workflow_import)

add_executable(import_normalise_test ${CMAKE_SOURCE_DIR}/test/import/normalise_test.cpp)
target_link_libraries(import_normalise_test PRIVATE workflow_import GTest::gtest_main)
add_test(NAME unit.import_normalise_test COMMAND import_normalise_test)

add_test(NAME client.import_sqlite
         COMMAND ${CMAKE_SOURCE_DIR}/test/import/import_sqlite_test.sh $<TARGET_FILE:workflow_cli>)
