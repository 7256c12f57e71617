// SQL entry points for step names and session ids:
//   workflow.step_name_key(text), workflow.normalize_step_name(text),
//   workflow.parse_session_id(text), workflow.is_valid_session_id(text).
#include "pg/spi.hpp"

extern "C" {
#include "access/htup_details.h"
#include "funcapi.h"
}

#include "core/survey_session_id.hpp"
#include "core/survey_step_name.hpp"
#include "extension/survey_step_lookup.hpp"
#include "extension/survey_text.hpp"

namespace survey = workflow::core::survey;
using workflow::survey_ext::text_arg;
using workflow::survey_ext::text_datum;

// The pure folding only, without the registry (IMMUTABLE).
WF_FUNCTION(workflow_step_name_key) {
  return text_datum(survey::step_name_key(text_arg(fcinfo, 0, "step name")));
}

// Folding plus registry / alias lookup.
WF_FUNCTION(workflow_normalize_step_name) {
  std::string_view raw = text_arg(fcinfo, 0, "step name");
  std::string name;
  {
    workflow::pg::SpiScope spi;
    name = workflow::survey_ext::resolve_step_name(raw);
  }
  return text_datum(name);
}

WF_FUNCTION(workflow_parse_session_id) {
  survey::SessionId parsed = survey::parse_session_id(text_arg(fcinfo, 0, "session id"));
  Datum values[2] = {text_datum(parsed.kind), text_datum(parsed.id)};
  return workflow::pg::pg_call([&] {
    TupleDesc desc;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
      elog(ERROR, "parse_session_id must return a composite type");
    desc = BlessTupleDesc(desc);
    bool nulls[2] = {false, false};
    return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
  });
}

// NULL is not a valid session id: false, not NULL.
WF_FUNCTION(workflow_is_valid_session_id) {
  if (PG_ARGISNULL(0)) return BoolGetDatum(false);
  return BoolGetDatum(survey::is_valid_session_id(text_arg(fcinfo, 0, "session id")));
}
