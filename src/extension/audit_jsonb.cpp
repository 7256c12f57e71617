// Datum -> jsonb conversion for the audit log (see audit_jsonb.hpp).
#include "extension/audit_jsonb.hpp"

extern "C" {
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/numeric.h"
}

#include <algorithm>
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

// A jsonb datum as a value: a scalar unwrapped, a container as jbvBinary.
// Returns whether it is a container.
bool jsonb_value(Datum value, JsonbValue* v) {
  Jsonb* jb = DatumGetJsonbP(value);
  if (JB_ROOT_IS_SCALAR(jb)) {
    JsonbExtractScalar(&jb->root, v);
    return false;
  }
  v->type = jbvBinary;
  v->val.binary.data = &jb->root;
  v->val.binary.len = VARSIZE(jb) - VARHDRSZ;
  return true;
}

// A column's value as to_jsonb converts it. Returns whether it is a container.
bool column_value(const ColumnInfo& column, Datum value, bool isnull, JsonbValue* v) {
  if (isnull) {
    v->type = jbvNull;
    return false;
  }
  switch (column.kind) {
    case ValueKind::integer: {
      int64 n = column.typlen == 2   ? DatumGetInt16(value)
                : column.typlen == 4 ? DatumGetInt32(value)
                                     : DatumGetInt64(value);
      v->type = jbvNumeric;
      v->val.numeric = int64_to_numeric(n);
      return false;
    }
    case ValueKind::numeric: {
      Numeric n = DatumGetNumeric(value);
      if (numeric_is_nan(n) || numeric_is_inf(n)) {  // not JSON numbers: to_jsonb writes strings
        char* s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(n)));
        set_string(v, s, strlen(s));
      } else {
        v->type = jbvNumeric;
        v->val.numeric = n;
      }
      return false;
    }
    case ValueKind::boolean:
      v->type = jbvBool;
      v->val.boolean = DatumGetBool(value);
      return false;
    case ValueKind::text: {
      text* t = DatumGetTextPP(value);
      set_string(v, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
      return false;
    }
    case ValueKind::jsonb:
      return jsonb_value(value, v);
    case ValueKind::datetime: {
      char buf[MAXDATELEN + 1];
      JsonEncodeDateTime(buf, value, column.base_type, nullptr);
      size_t len = strlen(buf);
      set_string(v, pnstrdup(buf, len), len);
      return false;
    }
    case ValueKind::output: {
      char* s = OutputFunctionCall(const_cast<FmgrInfo*>(&column.convert), value);
      set_string(v, s, strlen(s));
      return false;
    }
    case ValueKind::generic:
      return jsonb_value(FunctionCall1(const_cast<FmgrInfo*>(&column.convert), value), v);
  }
  pg_unreachable();
}

// Key order of a jsonb object: shorter keys first, then bytewise.
bool key_less(const JsonbValue& a, const JsonbValue& b) {
  if (a.val.string.len != b.val.string.len) return a.val.string.len < b.val.string.len;
  return memcmp(a.val.string.val, b.val.string.val, a.val.string.len) < 0;
}

size_t int_aligned(size_t offset) { return INTALIGN(offset); }

// The varlena jsonb of an object whose values are all scalars, keys distinct
// and sorted: what convertJsonbObject writes for it (header, a JEntry per key
// and value, every JB_OFFSET_STRIDE'th an end offset, keys' bytes, values'
// bytes, numerics int-aligned). nullptr when its data would exceed what a
// JEntry can hold; the caller then lets PostgreSQL raise that error.
Jsonb* encode_scalar_object(const JsonbPair* pairs, int n) {
  // Offsets count from the start of the varlena, as the StringInfo of
  // convertToJsonb does: its int alignment is the one numerics get.
  const size_t data_start = VARHDRSZ + sizeof(uint32) + sizeof(JEntry) * 2 * static_cast<size_t>(n);
  size_t end = data_start;
  for (int i = 0; i < n; ++i) end += pairs[i].key.val.string.len;
  for (int i = 0; i < n; ++i) {
    const JsonbValue& v = pairs[i].value;
    if (v.type == jbvString) end += v.val.string.len;
    else if (v.type == jbvNumeric) end = int_aligned(end) + VARSIZE_ANY(v.val.numeric);
  }
  if (end - VARHDRSZ > JENTRY_OFFLENMASK) return nullptr;

  auto* jb = static_cast<Jsonb*>(palloc0(end));
  SET_VARSIZE(jb, end);
  char* base = reinterpret_cast<char*>(jb);
  jb->root.header = static_cast<uint32>(n) | JB_FOBJECT;
  JEntry* entries = jb->root.children;
  size_t at = data_start;
  uint32 total = 0;  // bytes of the children so far: the end offset
  auto put = [&](int index, JEntry type, size_t len) {
    total += static_cast<uint32>(len);
    entries[index] = index % JB_OFFSET_STRIDE == 0 ? (type | total | JENTRY_HAS_OFF)
                                                   : (type | static_cast<uint32>(len));
  };
  for (int i = 0; i < n; ++i) {
    const JsonbValue& k = pairs[i].key;
    memcpy(base + at, k.val.string.val, k.val.string.len);
    at += k.val.string.len;
    put(i, JENTRY_ISSTRING, k.val.string.len);
  }
  for (int i = 0; i < n; ++i) {
    const JsonbValue& v = pairs[i].value;
    switch (v.type) {
      case jbvNull:
        put(n + i, JENTRY_ISNULL, 0);
        break;
      case jbvBool:
        put(n + i, v.val.boolean ? JENTRY_ISBOOL_TRUE : JENTRY_ISBOOL_FALSE, 0);
        break;
      case jbvString:
        memcpy(base + at, v.val.string.val, v.val.string.len);
        at += v.val.string.len;
        put(n + i, JENTRY_ISSTRING, v.val.string.len);
        break;
      case jbvNumeric: {
        size_t padded = int_aligned(at);
        size_t len = VARSIZE_ANY(v.val.numeric);
        memcpy(base + padded, v.val.numeric, len);
        put(n + i, JENTRY_ISNUMERIC, padded - at + len);
        at = padded + len;
        break;
      }
      default:
        elog(ERROR, "workflow audit: unexpected jsonb value type %d", static_cast<int>(v.type));
    }
  }
  Assert(at == end);
  return jb;
}

}  // namespace

ObjectBuilder::ObjectBuilder(int capacity)
    : pairs_(static_cast<JsonbPair*>(palloc(sizeof(JsonbPair) * std::max(capacity, 1)))) {}

void ObjectBuilder::add(const ColumnInfo& column, Datum value, bool isnull) {
  JsonbPair& pair = pairs_[count_];
  pair.key.type = jbvString;
  pair.key.val.string.val = const_cast<char*>(column.name);
  pair.key.val.string.len = column.name_len;
  pair.order = static_cast<uint32>(count_);
  if (column_value(column, value, isnull, &pair.value)) has_container_ = true;
  ++count_;
}

Datum ObjectBuilder::finish() {
  if (!has_container_) {
    // Column names are distinct: sorting is all uniqueifyJsonbObject would do.
    std::sort(pairs_, pairs_ + count_,
              [](const JsonbPair& a, const JsonbPair& b) { return key_less(a.key, b.key); });
    if (Jsonb* jb = encode_scalar_object(pairs_, count_)) return JsonbPGetDatum(jb);
  }
  JsonbParseState* state = nullptr;
  pushJsonbValue(&state, WJB_BEGIN_OBJECT, nullptr);
  for (int i = 0; i < count_; ++i) {
    pushJsonbValue(&state, WJB_KEY, &pairs_[i].key);
    pushJsonbValue(&state, WJB_VALUE, &pairs_[i].value);
  }
  return JsonbPGetDatum(JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, nullptr)));
}

Datum row_object(const RelationInfo* info, const Datum* values, const bool* isnull, Pick pick) {
  ObjectBuilder object(pick == Pick::key ? info->nkeys : info->natts);
  for (int i = 0; i < info->natts; ++i) {
    const ColumnInfo& col = info->columns[i];
    bool wanted = pick == Pick::key ? col.is_key : !col.skip;
    if (wanted) object.add(col, values[i], isnull[i]);
  }
  return object.finish();
}

}  // namespace workflow::audit
