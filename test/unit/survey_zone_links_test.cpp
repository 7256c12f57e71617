// Legacy zone names read as their tzdata 2024b link targets (src/core/survey_zone_links.*).
#include "core/survey_zone_links.hpp"

#include <gtest/gtest.h>

namespace survey = workflow::core::survey;

TEST(SurveyZoneLinks, EveryLegacyNameHasItsTarget) {
  EXPECT_EQ(survey::legacy_zone_link("CET"), "Europe/Brussels");
  EXPECT_EQ(survey::legacy_zone_link("MET"), "Europe/Brussels");
  EXPECT_EQ(survey::legacy_zone_link("EET"), "Europe/Athens");
  EXPECT_EQ(survey::legacy_zone_link("WET"), "Europe/Lisbon");
  EXPECT_EQ(survey::legacy_zone_link("EST"), "America/Panama");
  EXPECT_EQ(survey::legacy_zone_link("MST"), "America/Phoenix");
  EXPECT_EQ(survey::legacy_zone_link("HST"), "Pacific/Honolulu");
  EXPECT_EQ(survey::legacy_zone_link("EST5EDT"), "America/New_York");
  EXPECT_EQ(survey::legacy_zone_link("CST6CDT"), "America/Chicago");
  EXPECT_EQ(survey::legacy_zone_link("MST7MDT"), "America/Denver");
  EXPECT_EQ(survey::legacy_zone_link("PST8PDT"), "America/Los_Angeles");
}

TEST(SurveyZoneLinks, CaseInsensitiveButOtherwiseExact) {
  EXPECT_EQ(survey::legacy_zone_link("cet"), "Europe/Brussels");
  EXPECT_EQ(survey::legacy_zone_link("Est5Edt"), "America/New_York");
  for (const char* other : {"", " CET", "CET ", "CEST", "PST", "UTC", "GMT", "Europe/Berlin", "EST5", "CE"})
    EXPECT_EQ(survey::legacy_zone_link(other), std::nullopt) << other;
}
