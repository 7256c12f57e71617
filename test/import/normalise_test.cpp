// import-sqlite's canonical values and order-independent table checksums
// (src/cli/import_sqlite/normalise.hpp), without a server.
#include "import_sqlite/normalise.hpp"

#include <gtest/gtest.h>

using namespace workflow::import;

namespace {
std::optional<std::string> c(ValueKind k, const char* v) { return canonical(k, std::string_view(v)); }
}  // namespace

TEST(ImportNormalise, KindFromPostgresType) {
  EXPECT_EQ(kind_for_pg_type("bigint"), ValueKind::integer);
  EXPECT_EQ(kind_for_pg_type("double precision"), ValueKind::floating);
  EXPECT_EQ(kind_for_pg_type("numeric(5,2)"), ValueKind::numeric);
  EXPECT_EQ(kind_for_pg_type("timestamp with time zone"), ValueKind::timestamp);
  EXPECT_EQ(kind_for_pg_type("date"), ValueKind::timestamp);
  EXPECT_EQ(kind_for_pg_type("bytea"), ValueKind::bytes);
  EXPECT_EQ(kind_for_pg_type("boolean"), ValueKind::boolean);
  EXPECT_EQ(kind_for_pg_type("text"), ValueKind::text);
}

TEST(ImportNormalise, BooleansFromEitherSide) {
  for (const char* t : {"1", "t", "TRUE", "true", "yes"}) EXPECT_EQ(c(ValueKind::boolean, t), "t");
  for (const char* f : {"0", "f", "false", "No"}) EXPECT_EQ(c(ValueKind::boolean, f), "f");
  EXPECT_EQ(c(ValueKind::boolean, "maybe"), "?maybe");  // still differs from t and f
}

TEST(ImportNormalise, FloatsRoundTripAndZeroIsOne) {
  EXPECT_EQ(c(ValueKind::floating, "0.1"), c(ValueKind::floating, "0.10000000000000001"));
  EXPECT_NE(c(ValueKind::floating, "0.1"), c(ValueKind::floating, "0.10000000000000002"));
  EXPECT_EQ(c(ValueKind::floating, "-0"), c(ValueKind::floating, "0"));
  EXPECT_EQ(c(ValueKind::floating, "1e+300"), c(ValueKind::floating, "1.0000000000000000e300"));
  EXPECT_EQ(c(ValueKind::floating, "1.0d7"), "?1.0d7");  // pgloader's Lisp notation is not a number
}

TEST(ImportNormalise, DecimalsDropTrailingZeros) {
  EXPECT_EQ(c(ValueKind::numeric, "93.50"), "93.5");
  EXPECT_EQ(c(ValueKind::numeric, "100.00"), "100");
  EXPECT_EQ(c(ValueKind::numeric, "100"), "100");
  EXPECT_EQ(c(ValueKind::numeric, "-0.00"), "0");
  EXPECT_NE(c(ValueKind::numeric, "93.46"), c(ValueKind::numeric, "93.456"));
}

TEST(ImportNormalise, NullIsNotEmptyAndHexIgnoresCase) {
  EXPECT_EQ(canonical(ValueKind::text, std::nullopt), std::nullopt);
  EXPECT_EQ(c(ValueKind::text, ""), std::string());
  EXPECT_EQ(c(ValueKind::bytes, "00FF10"), "00ff10");
}

TEST(ImportNormalise, ChecksumIgnoresOrderButSeesEveryChange) {
  using Row = std::vector<std::optional<std::string>>;
  const Row a{"1", "x"}, b{"2", std::nullopt}, b_empty{"2", ""}, b_swapped{std::nullopt, "2"};
  TableChecksum ab, ba, with_empty, twice, swapped;
  ab.add_row(a); ab.add_row(b);
  ba.add_row(b); ba.add_row(a);
  with_empty.add_row(a); with_empty.add_row(b_empty);
  twice.add_row(a); twice.add_row(a);
  swapped.add_row(a); swapped.add_row(b_swapped);
  EXPECT_EQ(ab.value(), ba.value());
  EXPECT_EQ(ab.rows(), 2);
  EXPECT_NE(ab.value(), with_empty.value());  // NULL differs from ''
  EXPECT_NE(ab.value(), twice.value());       // a duplicated row replacing another
  EXPECT_NE(ab.value(), swapped.value());     // values moved between columns
  EXPECT_EQ(ab.hex().size(), 16u);
}
