// /metrics in the Prometheus text format (0.0.4), from the monitoring views
// and the serve process's client pool. The list is in README "Dashboard and
// metrics"; test/web/metrics.sh checks it with promtool and against the views.
#pragma once

#include <string>

#include "db.hpp"
#include "overview.hpp"

namespace workflow::serve {

// The task counts across every job come from `overview` (shared with the
// queues panel, reused for --scan-cache-ms and --count-cache-ms).
std::string render_metrics(Db& db, Overview& overview);

}  // namespace workflow::serve
