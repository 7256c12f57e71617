// Datum -> jsonb conversion for the audit log (see audit_jsonb.hpp).
#include "extension/audit_jsonb.hpp"

extern "C" {
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/numeric.h"
}

#include <cstring>

namespace workflow::audit {
namespace {

void check_string_length(size_t len) {
  if (len > JENTRY_OFFLENMASK)
    ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                    errmsg("workflow audit: string too long to represent as jsonb string"),
                    errdetail("Due to an implementation restriction, jsonb strings cannot exceed %d bytes.",
                              JENTRY_OFFLENMASK)));
}

void set_string(JsonbValue* v, char* s, size_t len) {
  check_string_length(len);
  v->type = jbvString;
  v->val.string.val = s;
  v->val.string.len = static_cast<int>(len);
}

// Pushes a jsonb datum as the value: scalars unwrapped, containers nested.
void push_jsonb(JsonbParseState** state, Datum value) {
  Jsonb* jb = DatumGetJsonbP(value);
  JsonbValue v;
  if (JB_ROOT_IS_SCALAR(jb)) {
    JsonbExtractScalar(&jb->root, &v);
  } else {
    v.type = jbvBinary;
    v.val.binary.data = &jb->root;
    v.val.binary.len = VARSIZE(jb) - VARHDRSZ;
  }
  pushJsonbValue(state, WJB_VALUE, &v);
}

}  // namespace

void object_begin(JsonbParseState** state) {
  *state = nullptr;
  pushJsonbValue(state, WJB_BEGIN_OBJECT, nullptr);
}

void object_add(JsonbParseState** state, const ColumnInfo& column, Datum value, bool isnull) {
  JsonbValue key;
  key.type = jbvString;
  key.val.string.val = const_cast<char*>(column.name);
  key.val.string.len = column.name_len;
  pushJsonbValue(state, WJB_KEY, &key);

  JsonbValue v;
  if (isnull) {
    v.type = jbvNull;
    pushJsonbValue(state, WJB_VALUE, &v);
    return;
  }
  switch (column.kind) {
    case ValueKind::integer: {
      int64 n = column.typlen == 2   ? DatumGetInt16(value)
                : column.typlen == 4 ? DatumGetInt32(value)
                                     : DatumGetInt64(value);
      v.type = jbvNumeric;
      v.val.numeric = int64_to_numeric(n);
      break;
    }
    case ValueKind::numeric: {
      Numeric n = DatumGetNumeric(value);
      if (numeric_is_nan(n) || numeric_is_inf(n)) {  // not JSON numbers: to_jsonb writes strings
        char* s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(n)));
        set_string(&v, s, strlen(s));
      } else {
        v.type = jbvNumeric;
        v.val.numeric = n;
      }
      break;
    }
    case ValueKind::boolean:
      v.type = jbvBool;
      v.val.boolean = DatumGetBool(value);
      break;
    case ValueKind::text: {
      text* t = DatumGetTextPP(value);
      set_string(&v, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
      break;
    }
    case ValueKind::jsonb:
      push_jsonb(state, value);
      return;
    case ValueKind::datetime: {
      char buf[MAXDATELEN + 1];
      JsonEncodeDateTime(buf, value, column.base_type, nullptr);
      size_t len = strlen(buf);
      set_string(&v, pnstrdup(buf, len), len);
      break;
    }
    case ValueKind::output: {
      char* s = OutputFunctionCall(const_cast<FmgrInfo*>(&column.convert), value);
      set_string(&v, s, strlen(s));
      break;
    }
    case ValueKind::generic:
      push_jsonb(state, FunctionCall1(const_cast<FmgrInfo*>(&column.convert), value));
      return;
  }
  pushJsonbValue(state, WJB_VALUE, &v);
}

Datum object_end(JsonbParseState** state) {
  JsonbValue* result = pushJsonbValue(state, WJB_END_OBJECT, nullptr);
  return JsonbPGetDatum(JsonbValueToJsonb(result));
}

Datum row_object(const RelationInfo* info, const Datum* values, const bool* isnull, Pick pick) {
  JsonbParseState* state;
  object_begin(&state);
  for (int i = 0; i < info->natts; ++i) {
    const ColumnInfo& col = info->columns[i];
    bool wanted = pick == Pick::key ? col.is_key : !col.skip;
    if (wanted) object_add(&state, col, values[i], isnull[i]);
  }
  return object_end(&state);
}

}  // namespace workflow::audit
