// Runs a few SPI queries with another role's rights: `role` as the current
// user (row-level security not forced), under the catalog search path
// (search_path.hpp says why), inside SPI_connect / SPI_finish. The body must
// hold no object with a destructor: an error unwinds the user, the setting
// and SPI with the (sub)transaction.
#pragma once

extern "C" {
#include "postgres.h"
#include "executor/spi.h"
#include "miscadmin.h"
}

#include "pg/search_path.hpp"

namespace workflow::pg {

template <typename Body>
void spi_as_role(Oid role, Body&& body) {
  Oid save_user;
  int save_sec;
  GetUserIdAndSecContext(&save_user, &save_sec);
  SetUserIdAndSecContext(role, save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
  int nest = push_catalog_search_path();
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "workflow: SPI_connect failed");
  body();
  SPI_finish();
  pop_search_path(nest);
  SetUserIdAndSecContext(save_user, save_sec);
}

}  // namespace workflow::pg
