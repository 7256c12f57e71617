// Whether a table is a Citus table (distributed or reference: a row in
// pg_catalog.pg_dist_partition). On a Citus node such a table is a shell
// whose rows live in shards, so code below the SQL layer must not read or
// write it: it takes the SQL path, which Citus routes to the shard.
// Plain C on PostgreSQL objects: may ereport; call inside pg_call.
#pragma once

extern "C" {
#include "postgres.h"
}

namespace workflow::pg {

bool is_citus_table(Oid relid);

}  // namespace workflow::pg
