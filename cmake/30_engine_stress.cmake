# Race tests of the job -> stage -> task engine: many libpq connections
# (threads) against the test cluster (DATABASE_URL); ctest names engine.*.
find_package(Threads REQUIRED)
add_executable(engine_race_test ${CMAKE_SOURCE_DIR}/test/stress/engine_race_test.cpp)
target_link_libraries(engine_race_test PRIVATE PkgConfig::LIBPQ GTest::gtest_main Threads::Threads)
add_test(NAME engine.race COMMAND engine_race_test)
set_tests_properties(engine.race PROPERTIES TIMEOUT 600)
