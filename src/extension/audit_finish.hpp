// ExecutorFinish hook: a write stopped early by a row limit (SPI with tcount,
// an INSERT/UPDATE/DELETE ... RETURNING whose caller read only some rows)
// still queues the audited table's AFTER STATEMENT triggers. Installed by
// audit::init_module() when the library loads.
#pragma once

extern "C" {
#include "postgres.h"
}

namespace workflow::audit {

void install_finish_hook();

}  // namespace workflow::audit
