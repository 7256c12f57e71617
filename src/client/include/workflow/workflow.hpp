// Umbrella header for the workflow client library.
#pragma once

#include "workflow/api.hpp"
#include "workflow/client.hpp"
#include "workflow/connection.hpp"
#include "workflow/controls.hpp"
#include "workflow/error.hpp"
#include "workflow/pool.hpp"
#include "workflow/result.hpp"
#include "workflow/retry.hpp"
#include "workflow/settings.hpp"
#include "workflow/transaction.hpp"
#include "workflow/types.hpp"
#include "workflow/worker.hpp"
#include "workflow/worker_group.hpp"
