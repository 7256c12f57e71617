// Turning C++ exceptions into PostgreSQL errors (see boundary.hpp).
#include "pg/boundary.hpp"

#include <cstring>
#include <new>
#include <string>

namespace workflow::pg {
namespace {

// Copies into the current memory context. Runs inside the catch block, so it
// must not ereport (a longjmp out of a catch handler corrupts the C++
// runtime's record of caught exceptions): on allocation failure it returns
// `fallback` instead.
const char* copy_text(const char* s, std::size_t len, const char* fallback) noexcept {
  char* copy = static_cast<char*>(
      MemoryContextAllocExtended(CurrentMemoryContext, len + 1, MCXT_ALLOC_NO_OOM));
  if (copy == nullptr) return fallback;
  memcpy(copy, s, len);
  copy[len] = '\0';
  return copy;
}

const char* copy_message(const char* s) noexcept {
  return copy_text(s, strlen(s), "out of memory while reporting an error in workflow extension");
}

const char* copy_optional(const std::string& s) noexcept {
  return s.empty() ? nullptr : copy_text(s.data(), s.size(), nullptr);
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
    out.message = copy_message(e.what());
    out.detail = copy_optional(e.detail());
    out.hint = copy_optional(e.hint());
  } catch (const std::bad_alloc&) {
    out.sqlerrcode = ERRCODE_OUT_OF_MEMORY;
    out.message = "out of memory in workflow extension";
  } catch (const std::exception& e) {
    out.sqlerrcode = ERRCODE_INTERNAL_ERROR;
    out.message = copy_message(e.what());
  } catch (...) {
    out.sqlerrcode = ERRCODE_INTERNAL_ERROR;
    out.message = "unknown C++ exception in workflow extension";
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
