// workflow.upsert_survey_steps(jsonb): the batch upsert.
//
// Every element is validated first (session id, step name, value,
// completed_at), naming the element's 0-based index on error, so a bad
// element writes nothing. The valid batch is then written by one set-based
// INSERT ... ON CONFLICT over unnest() of arrays (after one INSERT that makes
// sure every session exists), so the cost per step is that of a row, not of
// a statement.
#include "pg/spi.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
}

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/survey_session_id.hpp"
#include "core/survey_step_name.hpp"
#include "extension/survey_step_lookup.hpp"

namespace {

namespace pg = workflow::pg;
namespace core = workflow::core;

constexpr int kMaxElements = 1000000;
constexpr int kMaxValueBytes = 65536;

// One element's fields as found in the jsonb; filled by PostgreSQL-only code.
struct RawElement {
  bool is_object;
  const char* unknown_key;  // palloc'd, NUL-terminated; nullptr when none
  int unknown_key_len;
  JsonbValue session_id, step_name, value, completed_at;
  bool has_session_id, has_step_name, has_value, has_completed_at;
};

std::string element_label(int index) { return "steps element " + std::to_string(index) + " (0-based)"; }

[[noreturn]] void reject(const char* sqlstate, int index, const std::string& why) {
  throw core::error(sqlstate, element_label(index) + ": " + why);
}

// Reads one array element (a jbvBinary container or a scalar). No C++
// objects, no throws: runs inside pg_call.
void read_element(const JsonbValue& elem, RawElement& out) {
  out = RawElement{};
  if (elem.type != jbvBinary || !JsonContainerIsObject(elem.val.binary.data)) return;
  out.is_object = true;
  JsonbIterator* it = JsonbIteratorInit(elem.val.binary.data);
  JsonbValue v;
  JsonbIteratorToken tok;
  JsonbValue key{};
  while ((tok = JsonbIteratorNext(&it, &v, /*skipNested=*/true)) != WJB_DONE) {
    if (tok == WJB_KEY) {
      key = v;
      continue;
    }
    if (tok != WJB_VALUE) continue;
    std::string_view k(key.val.string.val, key.val.string.len);
    if (k == "session_id") { out.session_id = v; out.has_session_id = true; }
    else if (k == "step_name") { out.step_name = v; out.has_step_name = true; }
    else if (k == "value") { out.value = v; out.has_value = true; }
    else if (k == "completed_at") { out.completed_at = v; out.has_completed_at = true; }
    else if (out.unknown_key == nullptr) {
      out.unknown_key = pnstrdup(key.val.string.val, key.val.string.len);
      out.unknown_key_len = key.val.string.len;
    }
  }
}

std::string_view string_field(const RawElement& e, int index, const char* name, bool present,
                              const JsonbValue& v) {
  if (!present || v.type == jbvNull)
    reject(core::sqlstate::null_value_not_allowed, index, std::string(name) + " is missing or null");
  if (v.type != jbvString) reject(core::sqlstate::invalid_parameter_value, index, std::string(name) + " must be a JSON string");
  return {v.val.string.val, static_cast<std::size_t>(v.val.string.len)};
}

struct Batch {
  workflow::survey_ext::StepNameCache names;   // owns the strings step_names points to
  std::vector<std::string> session_ids;
  std::vector<const std::string*> step_names;
  std::vector<Datum> values;                   // jsonb
  std::vector<Datum> completed_at;             // timestamptz
};

TimestampTz parse_completed_at(const RawElement& e, int index) {
  if (!e.has_completed_at) return GetCurrentTransactionStartTimestamp();  // DEFAULT now()
  std::string text(string_field(e, index, "completed_at", true, e.completed_at));
  TimestampTz ts;
  try {
    ts = pg::pg_call([&] {
      return DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(text.c_str()),
                                                     ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
    });
  } catch (const pg::pg_error& err) {
    // Name the element; the transaction aborts with this error all the same.
    reject(core::sqlstate::invalid_parameter_value, index,
           "completed_at " + core::survey::quote_for_message(text) + " is not a timestamp: " + err.what());
  }
  if (TIMESTAMP_NOT_FINITE(ts))
    reject(core::sqlstate::invalid_parameter_value, index,
           "completed_at " + core::survey::quote_for_message(text) + " must be finite");
  return ts;
}

Datum value_jsonb(const RawElement& e, int index) {
  if (!e.has_value) {
    return pg::pg_call([] { return DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")); });
  }
  if (e.value.type == jbvNull) reject(core::sqlstate::null_value_not_allowed, index, "value is null");
  JsonbValue v = e.value;
  Jsonb* j = pg::pg_call([&] { return JsonbValueToJsonb(&v); });
  if (VARSIZE(j) > kMaxValueBytes)
    reject(core::sqlstate::invalid_parameter_value, index,
           "value is " + std::to_string(VARSIZE(j)) + " bytes, at most " + std::to_string(kMaxValueBytes) + " are accepted");
  return JsonbPGetDatum(j);
}

void validate(Jsonb* steps, Batch& batch) {
  if (!JB_ROOT_IS_ARRAY(steps) || JB_ROOT_IS_SCALAR(steps))
    throw core::error(core::sqlstate::invalid_parameter_value, "steps must be a JSON array of objects");
  int count = JB_ROOT_COUNT(steps);
  if (count > kMaxElements)
    throw core::error(core::sqlstate::program_limit_exceeded,
                      "steps has " + std::to_string(count) + " elements, at most " + std::to_string(kMaxElements) + " are accepted");
  batch.session_ids.reserve(count);
  batch.step_names.reserve(count);
  batch.values.reserve(count);
  batch.completed_at.reserve(count);

  RawElement e;
  for (int i = 0; i < count; ++i) {
    pg::pg_call([&] {
      JsonbValue* elem = getIthJsonbValueFromContainer(&steps->root, static_cast<uint32>(i));
      read_element(*elem, e);
    });
    if (!e.is_object) reject(core::sqlstate::invalid_parameter_value, i, "must be a JSON object");
    if (e.unknown_key)
      reject(core::sqlstate::invalid_parameter_value, i,
             "unknown key " + core::survey::quote_for_message({e.unknown_key, static_cast<std::size_t>(e.unknown_key_len)}) +
                 " (accepted: session_id, step_name, value, completed_at)");
    try {
      auto session = core::survey::parse_session_id(string_field(e, i, "session_id", e.has_session_id, e.session_id));
      const std::string& step = batch.names.resolve(string_field(e, i, "step_name", e.has_step_name, e.step_name));
      batch.session_ids.push_back(std::move(session.id));
      batch.step_names.push_back(&step);
    } catch (const core::error& err) {
      if (std::string_view(err.what()).rfind("steps element ", 0) == 0) throw;
      throw core::error(err.sqlstate(), element_label(i) + ": " + err.what(), err.detail(), err.hint());
    }
    batch.values.push_back(value_jsonb(e, i));
    batch.completed_at.push_back(TimestampTzGetDatum(parse_completed_at(e, i)));
  }
}

// Arrays for the statement's parameters. PostgreSQL-only code inside.
void build_arrays(const Batch& batch, Datum params[4]) {
  pg::pg_call([&] {
    int n = static_cast<int>(batch.session_ids.size());
    Datum* sessions = static_cast<Datum*>(palloc(sizeof(Datum) * (n + 1)));
    Datum* steps = static_cast<Datum*>(palloc(sizeof(Datum) * (n + 1)));
    for (int i = 0; i < n; ++i) {
      const std::string& s = batch.session_ids[i];
      const std::string& st = *batch.step_names[i];
      sessions[i] = PointerGetDatum(cstring_to_text_with_len(s.data(), static_cast<int>(s.size())));
      steps[i] = PointerGetDatum(cstring_to_text_with_len(st.data(), static_cast<int>(st.size())));
    }
    params[0] = PointerGetDatum(construct_array(sessions, n, TEXTOID, -1, false, TYPALIGN_INT));
    params[1] = PointerGetDatum(construct_array(steps, n, TEXTOID, -1, false, TYPALIGN_INT));
    params[2] = PointerGetDatum(construct_array(const_cast<Datum*>(batch.values.data()), n, JSONBOID, -1, false, TYPALIGN_INT));
    params[3] = PointerGetDatum(construct_array(const_cast<Datum*>(batch.completed_at.data()), n, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
  });
}

}  // namespace

WF_FUNCTION(workflow_upsert_survey_steps) {
  if (PG_ARGISNULL(0)) throw core::error(core::sqlstate::null_value_not_allowed, "steps must not be null");
  Jsonb* steps = pg::pg_call([&] { return PG_GETARG_JSONB_P(0); });

  // Sessions first, in id order (a stable lock order between concurrent batches).
  static pg::Statement ensure_sessions{
      "INSERT INTO workflow.survey_sessions (session_id) "
      "SELECT DISTINCT s.id FROM pg_catalog.unnest($1::pg_catalog.text[]) AS s(id) ORDER BY s.id "
      "ON CONFLICT (session_id) DO NOTHING",
      {TEXTARRAYOID}};
  // Then each session row locked FOR KEY SHARE until commit, so that
  // cleanup_survey_sessions cannot delete one between the statements (the
  // upsert's join would then skip its elements without an error). A session
  // deleted after ensure_sessions saw it is not found: ensure again.
  static pg::Statement lock_sessions{
      "SELECT s.session_id FROM workflow.survey_sessions s "
      "WHERE s.session_id = ANY ($1::pg_catalog.text[]) ORDER BY s.session_id FOR KEY SHARE",
      {TEXTARRAYOID}};
  // One row per (session, week, step); within the batch the last element wins.
  static pg::Statement upsert{
      "INSERT INTO workflow.survey_steps AS t (session_id, step_name, week_start, value, completed_at) "
      "SELECT DISTINCT ON (i.session_id, w.week_start, i.step_name) "
      "       i.session_id, i.step_name, w.week_start, i.value, i.completed_at "
      "FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.text[]), "
      "                pg_catalog.unnest($3::pg_catalog.jsonb[]), pg_catalog.unnest($4::pg_catalog.timestamptz[])) "
      "       WITH ORDINALITY "
      "       AS i(session_id, step_name, value, completed_at, ord) "
      "JOIN workflow.survey_sessions s ON s.session_id = i.session_id "
      "CROSS JOIN LATERAL (SELECT workflow.survey_week_start(i.completed_at, s.time_zone) AS week_start) w "
      "ORDER BY i.session_id, w.week_start, i.step_name, i.ord DESC "
      "ON CONFLICT (session_id, week_start, step_name) DO UPDATE "
      "SET value = excluded.value, completed_at = excluded.completed_at, updated_at = pg_catalog.now()",
      {TEXTARRAYOID, TEXTARRAYOID, JSONBARRAYOID, TIMESTAMPTZARRAYOID}};

  uint64 written = 0;
  {
    pg::SpiScope spi;
    Batch batch;
    validate(steps, batch);
    if (batch.session_ids.empty()) return Int32GetDatum(0);
    Datum params[4];
    build_arrays(batch, params);
    std::set<std::string_view> distinct(batch.session_ids.begin(), batch.session_ids.end());
    for (int attempt = 0;; ++attempt) {
      pg::execute(ensure_sessions, params, nullptr, /*read_only=*/false);
      if (pg::execute(lock_sessions, params, nullptr, /*read_only=*/false) == distinct.size()) break;
      if (attempt == 100)
        throw core::error("40001", "survey sessions of the batch are being deleted concurrently; retry the batch");
    }
    written = pg::execute(upsert, params, nullptr, /*read_only=*/false);
  }
  return Int32GetDatum(static_cast<int32>(written));
}
