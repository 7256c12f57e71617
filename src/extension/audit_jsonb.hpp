// Building the log's jsonb values directly from a row's Datums: no to_jsonb of
// the whole row, no SPI. Each value converts as to_jsonb would convert it.
#pragma once

#include "extension/audit_cache.hpp"

extern "C" {
#include "utils/jsonb.h"
}

namespace workflow::audit {

// Which columns of a row go into an object.
enum class Pick { key, all_logged };

// Starts an object, adds "name": value pairs, returns the finished jsonb.
void object_begin(JsonbParseState** state);
void object_add(JsonbParseState** state, const ColumnInfo& column, Datum value, bool isnull);
Datum object_end(JsonbParseState** state);

// One object of the picked columns of a deformed row.
Datum row_object(const RelationInfo* info, const Datum* values, const bool* isnull, Pick pick);

}  // namespace workflow::audit
