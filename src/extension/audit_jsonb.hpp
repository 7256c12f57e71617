// Building the log's jsonb values directly from a row's Datums: no to_jsonb of
// the whole row, no SPI. Each value converts as to_jsonb would convert it.
// An object of scalars (the common case) is written in jsonb's on-disk format
// at once, byte for byte what JsonbValueToJsonb writes; one holding an array
// or object value goes through pushJsonbValue as before.
#pragma once

#include "extension/audit_cache.hpp"

extern "C" {
#include "utils/jsonb.h"
}

namespace workflow::audit {

// Which columns of a row go into an object.
enum class Pick { key, all_logged };

// An object under construction: add "name": value pairs, then finish() it.
// Its pairs are palloc'd in the current memory context (no destructor: safe
// across a PostgreSQL error).
class ObjectBuilder {
 public:
  explicit ObjectBuilder(int capacity);
  void add(const ColumnInfo& column, Datum value, bool isnull);
  Datum finish();

 private:
  JsonbPair* pairs_;
  int count_ = 0;
  bool has_container_ = false;  // a value is an array or object
};

// One object of the picked columns of a deformed row.
Datum row_object(const RelationInfo* info, const Datum* values, const bool* isnull, Pick pick);

}  // namespace workflow::audit
