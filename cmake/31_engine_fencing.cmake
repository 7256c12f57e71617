# Race test of fencing (stale workers racing reclaimers), against the test
# cluster (DATABASE_URL); ctest name engine.fencing_race.
find_package(Threads REQUIRED)
add_executable(engine_fencing_race_test ${CMAKE_SOURCE_DIR}/test/stress/engine_fencing_race_test.cpp)
target_link_libraries(engine_fencing_race_test PRIVATE PkgConfig::LIBPQ GTest::gtest_main Threads::Threads)
add_test(NAME engine.fencing_race COMMAND engine_fencing_race_test)
set_tests_properties(engine.fencing_race PROPERTIES TIMEOUT 300)
