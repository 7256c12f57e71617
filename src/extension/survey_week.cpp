// workflow.survey_week_start(at timestamptz, zone text) RETURNS date: the
// local Monday of the week containing `at` in the IANA time zone `zone`.
//
// Not timezone(zone, at): PostgreSQL looks a zone argument up among the time
// zone *abbreviations* first (timezone_abbreviations, a per-session setting),
// and the IANA zones CET, EET, MET and WET share their names with fixed-offset
// abbreviations. timezone('CET', at) is always UTC+1, though the zone CET
// keeps summer time, so a week would start at 23:00 local on summer Sundays;
// with timezone_abbreviations = 'Australia', 'EST' would be UTC+10. Here the
// zone database is asked first (pg_tzset, as SET TimeZone does); only a string
// that is no zone there (an abbreviation such as 'PST', an offset such as
// '+05') goes to timezone() as before. A legacy name that tzdata 2024b made a
// link (CET, EST5EDT, ...: core/survey_zone_links.hpp) is read as its target
// on every system, whether or not the system still ships it as a zone.
#include "pg/boundary.hpp"

extern "C" {
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"
#if PG_VERSION_NUM >= 160000
#include "varatt.h"  // VARSIZE_ANY_EXHDR (postgres.h had it before 16)
#endif
}

#include <cstring>

#include "core/survey_zone_links.hpp"

namespace {

// The Monday on or before the local date of `ts`: a timestamp already in
// local time (tz null) or an instant, converted in `tz`.
DateADT monday_of(Timestamp ts, pg_tz* tz) {
  struct pg_tm tm;
  fsec_t fsec;
  int offset;
  if (timestamp2tm(ts, tz ? &offset : nullptr, &tm, &fsec, nullptr, tz) != 0)
    ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE), errmsg("timestamp out of range")));
  int julian = date2j(tm.tm_year, tm.tm_mon, tm.tm_mday);
  int days_since_monday = (j2day(julian) + 6) % 7;  // j2day: 0 is Sunday
  DateADT monday = julian - days_since_monday - POSTGRES_EPOCH_JDATE;
  if (!IS_VALID_DATE(monday))  // a Monday before 4714-11-24 BC
    ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE), errmsg("date out of range")));
  return monday;
}

}  // namespace

WF_FUNCTION(workflow_survey_week_start) {
  return workflow::pg::pg_call([&]() -> Datum {
    TimestampTz at = PG_GETARG_TIMESTAMPTZ(0);
    text* zone = PG_GETARG_TEXT_PP(1);
    if (TIMESTAMP_IS_NOBEGIN(at)) {
      DateADT d;
      DATE_NOBEGIN(d);
      return DateADTGetDatum(d);
    }
    if (TIMESTAMP_IS_NOEND(at)) {
      DateADT d;
      DATE_NOEND(d);
      return DateADTGetDatum(d);
    }
    char name[TZ_STRLEN_MAX + 1];
    pg_tz* tz = nullptr;
    if (VARSIZE_ANY_EXHDR(zone) <= TZ_STRLEN_MAX) {
      text_to_cstring_buffer(zone, name, sizeof(name));
      // Into the plain buffer: no C++ object may live across pg_tzset.
      if (const auto link = workflow::core::survey::legacy_zone_link(name)) {
        std::memcpy(name, link->data(), link->size());  // every target is < TZ_STRLEN_MAX
        name[link->size()] = '\0';
      }
      tz = pg_tzset(name);
    }
    if (tz != nullptr) return DateADTGetDatum(monday_of(at, tz));
    Datum local = DirectFunctionCall2(timestamptz_zone, PointerGetDatum(zone), TimestampTzGetDatum(at));
    return DateADTGetDatum(monday_of(DatumGetTimestamp(local), nullptr));
  });
}
