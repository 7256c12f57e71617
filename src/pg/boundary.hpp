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
//       re-thrown unchanged (same SQLSTATE, message, detail, hint);
//       core::error keeps its SQLSTATE, std::bad_alloc is 53200, any other
//       exception XX000.
//
//   pg_call([&] { ... })        runs PostgreSQL code that may ereport while C++
//       objects are alive, and turns the error into workflow::pg::pg_error.
//       The error must propagate to WF_FUNCTION (never swallow it: the
//       transaction is already doomed and the boundary re-raises it).
//
// Rules for the lambda given to pg_call:
//   - It holds no C++ object with a destructor across a PostgreSQL call (an
//     ereport longjmps straight to pg_call, skipping the lambda's frames).
//   - It may throw, and it may call pg_call again (nesting: a helper that
//     uses pg_call itself): pg_call restores PG_exception_stack and
//     error_context_stack in a destructor however it is left, so the inner
//     error unwinds as pg_error through the outer lambda and on to
//     WF_FUNCTION. Nesting costs one more sigsetjmp; prefer flat calls.
//     WF_FUNCTION restores both stacks too before it reports a throw.
//   - Never throw, nor call pg_call, from code that PostgreSQL calls back
//     (hooks, callbacks, comparators): a C++ exception cannot cross C frames.
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
  const char* message = nullptr;    // copies or literals, never nullptr once captured
  const char* detail = nullptr;
  const char* hint = nullptr;
};

void capture_exception(pending_error& out) noexcept;
[[noreturn]] void report(const pending_error& err);

namespace detail {

// PostgreSQL's two error stacks as they were when the scope began, put back
// on every way out of it: a normal return, a C++ exception unwinding through
// (which would skip PG_END_TRY), and a caught ereport. This is what makes a
// throw inside pg_call's lambda, and a nested pg_call, safe.
class ErrorStacks {
 public:
  ErrorStacks() noexcept
      : exception_stack_(PG_exception_stack), context_stack_(error_context_stack) {}
  ~ErrorStacks() { restore(); }
  ErrorStacks(const ErrorStacks&) = delete;
  ErrorStacks& operator=(const ErrorStacks&) = delete;
  void restore() const noexcept {
    PG_exception_stack = exception_stack_;
    error_context_stack = context_stack_;
  }

 private:
  sigjmp_buf* const exception_stack_;
  ErrorContextCallback* const context_stack_;
};

// The catch half of pg_call, with the stacks already restored: copies the
// current error into `caller`, clears PostgreSQL's error state, throws it.
[[noreturn]] void throw_current_error(MemoryContext caller);

}  // namespace detail

template <typename Impl>
inline Datum call_guarded(Impl impl, FunctionCallInfo fcinfo) {
  const detail::ErrorStacks saved;  // undoes what a throwing body left pushed
  pending_error err;
  try {
    return impl(fcinfo);
  } catch (...) {
    capture_exception(err);
  }
  saved.restore();
  report(err);  // outside the catch block: the exception object is destroyed
}

// Runs f(), which calls PostgreSQL, converting an ereport(ERROR) into pg_error.
// f must return void or a trivially copyable value (Datum, pointer, integer).
template <typename F>
auto pg_call(F&& f) -> decltype(f()) {
  using R = decltype(f());
  static_assert(std::is_void_v<R> || std::is_trivially_copyable_v<R>,
                "pg_call returns only trivially copyable values");
  // Neither is modified after sigsetjmp, so both survive the longjmp.
  MemoryContext const caller_context = CurrentMemoryContext;
  const detail::ErrorStacks saved;
  sigjmp_buf frame;
  if (sigsetjmp(frame, 0) != 0) {
    saved.restore();  // as PG_CATCH does, before anything that may ereport
    detail::throw_current_error(caller_context);
  }
  PG_exception_stack = &frame;
  return f();  // ~ErrorStacks restores the stacks however f() leaves
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
