// workflow._survey_zone_link(zone text) RETURNS text: the geographic zone a
// legacy zone name links to since tzdata 2024b (core/survey_zone_links.hpp),
// or NULL. set_session_timezone stores that target.
#include "pg/boundary.hpp"

extern "C" {
#include "utils/builtins.h"
#if PG_VERSION_NUM >= 160000
#include "varatt.h"  // VARDATA_ANY (postgres.h had it before 16)
#endif
}

#include <string_view>

#include "core/survey_zone_links.hpp"

WF_FUNCTION(workflow_survey_zone_link) {
  text* zone = PG_GETARG_TEXT_PP(0);
  const auto target = workflow::core::survey::legacy_zone_link(
      std::string_view(VARDATA_ANY(zone), VARSIZE_ANY_EXHDR(zone)));
  if (!target) PG_RETURN_NULL();
  return workflow::pg::pg_call(
      [&] { return PointerGetDatum(cstring_to_text_with_len(target->data(), static_cast<int>(target->size()))); });
}
