// Turning C++ exceptions into PostgreSQL errors (see boundary.hpp).
#include "pg/boundary.hpp"

#include <new>
#include <string>

namespace workflow::pg {
namespace {

// Copies into the current memory context; never throws (palloc failure
// would ereport, but we only get here with the exception already caught and
// no C++ object alive except the exception itself, which the catch owns).
char* copy_text(const char* s) noexcept { return s ? pstrdup(s) : nullptr; }

char* copy_text(const std::string& s) noexcept {
  return s.empty() ? nullptr : pnstrdup(s.data(), s.size());
}

int to_errcode(const char* sqlstate) noexcept {
  return MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2], sqlstate[3], sqlstate[4]);
}

}  // namespace

void capture_exception(pending_error& out) noexcept {
  try {
    throw;
  } catch (const pg_error& e) {
    out.pg = e.data();
  } catch (const core::error& e) {
    out.sqlerrcode = to_errcode(e.sqlstate());
    out.message = copy_text(e.what());
    out.detail = copy_text(e.detail());
    out.hint = copy_text(e.hint());
  } catch (const std::bad_alloc&) {
    out.sqlerrcode = ERRCODE_OUT_OF_MEMORY;
    out.message = copy_text("out of memory in workflow extension");
  } catch (const std::exception& e) {
    out.sqlerrcode = ERRCODE_INTERNAL_ERROR;
    out.message = copy_text(e.what());
  } catch (...) {
    out.sqlerrcode = ERRCODE_INTERNAL_ERROR;
    out.message = copy_text("unknown C++ exception in workflow extension");
  }
}

namespace detail {

void throw_current_error(MemoryContext caller) {
  MemoryContextSwitchTo(caller);
  ErrorData* data = CopyErrorData();
  FlushErrorState();
  throw pg_error(data);
}

}  // namespace detail

void report(const pending_error& err) {
  if (err.pg) ReThrowError(err.pg);
  ereport(ERROR, (errcode(err.sqlerrcode), errmsg_internal("%s", err.message),
                  err.detail ? errdetail_internal("%s", err.detail) : 0,
                  err.hint ? errhint("%s", err.hint) : 0));
  pg_unreachable();
}

}  // namespace workflow::pg
