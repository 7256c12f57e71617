// The C++ / PostgreSQL error boundary, written once.
//
// PostgreSQL reports errors with ereport(ERROR), which longjmps and skips C++
// destructors; a C++ exception that escapes an extern "C" function aborts the
// backend. Two tools keep the two worlds apart:
//
//   WF_FUNCTION(name) { ... }   defines an SQL-callable function whose body
//       runs inside a try block. Any exception is turned into ereport(ERROR)
//       only after the catch block has ended, so no C++ object is alive when
//       PostgreSQL longjmps. A PostgreSQL error captured by pg_call() is
//       re-thrown unchanged (same SQLSTATE, message, detail).
//
//   pg_call([&] { ... })        runs PostgreSQL code that may ereport while C++
//       objects are alive, and turns the error into workflow::pg::pg_error.
//       The error must propagate to WF_FUNCTION (never swallow it: the
//       transaction is already doomed and the boundary re-raises it).
//
// Code that holds no C++ objects with destructors (palloc, Datums, plain
// structs) may call PostgreSQL directly.
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}

#include <exception>
#include <type_traits>

#include "core/error.hpp"

namespace workflow::pg {

// A PostgreSQL error captured by pg_call(); owns a copy of the ErrorData
// (palloc'd in the caller's memory context).
class pg_error : public std::exception {
 public:
  explicit pg_error(ErrorData* data) : data_(data) {}
  const char* what() const noexcept override { return data_->message ? data_->message : "postgres error"; }
  ErrorData* data() const noexcept { return data_; }

 private:
  ErrorData* data_;
};

// What the boundary reports once every C++ object is gone.
struct pending_error {
  ErrorData* pg = nullptr;          // re-thrown as is
  int sqlerrcode = 0;               // otherwise: ereport with these
  char* message = nullptr;
  char* detail = nullptr;
  char* hint = nullptr;
};

void capture_exception(pending_error& out) noexcept;
[[noreturn]] void report(const pending_error& err);

template <typename Impl>
inline Datum call_guarded(Impl impl, FunctionCallInfo fcinfo) {
  pending_error err;
  try {
    return impl(fcinfo);
  } catch (...) {
    capture_exception(err);
  }
  report(err);  // outside the catch block: the exception object is destroyed
}

// Runs f(), which calls PostgreSQL, converting an ereport(ERROR) into pg_error.
// f must return void or a trivially copyable value (Datum, pointer, integer).
template <typename F>
auto pg_call(F&& f) -> decltype(f()) {
  using R = decltype(f());
  static_assert(std::is_void_v<R> || std::is_trivially_copyable_v<R>,
                "pg_call returns only trivially copyable values");
  MemoryContext caller_context = CurrentMemoryContext;
  ErrorData* volatile captured = nullptr;
  if constexpr (std::is_void_v<R>) {
    PG_TRY();
    { f(); }
    PG_CATCH();
    {
      MemoryContextSwitchTo(caller_context);
      captured = CopyErrorData();
      FlushErrorState();
    }
    PG_END_TRY();
    if (captured) throw pg_error(captured);
  } else {
    volatile R result{};
    PG_TRY();
    { result = f(); }
    PG_CATCH();
    {
      MemoryContextSwitchTo(caller_context);
      captured = CopyErrorData();
      FlushErrorState();
    }
    PG_END_TRY();
    if (captured) throw pg_error(captured);
    return result;
  }
}

}  // namespace workflow::pg

// Defines an SQL-callable function `name` whose body may use C++ freely.
#define WF_FUNCTION(name)                                                      \
  static Datum name##_impl(FunctionCallInfo fcinfo);                           \
  extern "C" {                                                                 \
  PG_FUNCTION_INFO_V1(name);                                                   \
  PGDLLEXPORT Datum name(PG_FUNCTION_ARGS) {                                   \
    return workflow::pg::call_guarded(name##_impl, fcinfo);                    \
  }                                                                            \
  }                                                                            \
  static Datum name##_impl(FunctionCallInfo fcinfo)
