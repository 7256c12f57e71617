// wf_boundary_probe: SQL-callable probes of the C++/PostgreSQL boundary
// (src/pg/boundary.hpp, src/pg/spi.hpp). Test-only: never part of workflow.so.
// The boundary's sources are compiled in (WF_SRC selects them, see Makefile),
// so the probes exercise exactly the code the extension ships.
#include "pg/boundary.cpp"
#include "pg/spi.cpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/builtins.h"
}

#include <new>
#include <stdexcept>
#include <string>

extern "C" {
PG_MODULE_MAGIC;
}

namespace {

namespace wp = workflow::pg;
namespace wc = workflow::core;

std::string text_arg(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) return {};
  text* t = PG_GETARG_TEXT_PP(n);
  return std::string(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

int sqlstate_code(const std::string& s) {
  if (s.size() != 5) throw wc::error(wc::sqlstate::invalid_parameter_value, "sqlstate must have 5 characters");
  return MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4]);
}

struct not_a_std_exception {
  int code;
};

// Throws the exception named by `kind`.
[[noreturn]] void throw_kind(const std::string& kind) {
  if (kind == "core")
    throw wc::error(wc::sqlstate::invalid_parameter_value, "core error from probe",
                    "the probe's detail", "the probe's hint");
  if (kind == "std") throw std::runtime_error("std::runtime_error from probe");
  if (kind == "bad_alloc") throw std::bad_alloc();
  if (kind == "int") throw 42;
  if (kind == "struct") throw not_a_std_exception{7};
  throw wc::error(wc::sqlstate::invalid_parameter_value, "unknown kind " + kind);
}

void probe_context_callback(void* arg) {
  errcontext("probe context callback %s", static_cast<const char*>(arg));
}

}  // namespace

// A PostgreSQL error raised inside pg_call while C++ objects are alive.
WF_FUNCTION(boundary_probe_pg_error) {
  std::string state = text_arg(fcinfo, 0), message = text_arg(fcinfo, 1);
  std::string detail = text_arg(fcinfo, 2), hint = text_arg(fcinfo, 3);
  int code = sqlstate_code(state);
  wp::pg_call([&] {
    ereport(ERROR, (errcode(code), errmsg_internal("%s", message.c_str()),
                    detail.empty() ? 0 : errdetail_internal("%s", detail.c_str()),
                    hint.empty() ? 0 : errhint("%s", hint.c_str())));
  });
  PG_RETURN_VOID();
}

// A C++ exception thrown inside pg_call's lambda. Kind "context" first
// pushes an error context callback (a frame-local one, as PostgreSQL code
// does), then throws: error_context_stack must not keep pointing at it.
WF_FUNCTION(boundary_probe_throw_inside) {
  std::string kind = text_arg(fcinfo, 0);
  wp::pg_call([&] {
    if (kind == "context") {
      ErrorContextCallback callback;
      callback.callback = probe_context_callback;
      callback.arg = const_cast<char*>("(must not appear)");
      callback.previous = error_context_stack;
      error_context_stack = &callback;
      throw std::runtime_error("thrown with a context callback pushed");
    }
    throw_kind(kind);
  });
  PG_RETURN_VOID();
}

// The same exceptions thrown by the function body, outside any pg_call; kind
// "context" pushes a context callback in the body first.
WF_FUNCTION(boundary_probe_throw_outside) {
  std::string kind = text_arg(fcinfo, 0);
  ErrorContextCallback callback;
  if (kind == "context") {
    callback.callback = probe_context_callback;
    callback.arg = const_cast<char*>("(must not appear)");
    callback.previous = error_context_stack;
    error_context_stack = &callback;
    throw std::runtime_error("thrown by the body with a context callback pushed");
  }
  throw_kind(kind);
}

// A pg_call inside a pg_call.
WF_FUNCTION(boundary_probe_nested) {
  std::string mode = text_arg(fcinfo, 0);
  int32 result = wp::pg_call([&] {
    int32 inner = wp::pg_call([&] {
      if (mode == "inner_pg")
        ereport(ERROR, (errcode(ERRCODE_DIVISION_BY_ZERO), errmsg("inner division by zero"),
                        errdetail("raised by the inner pg_call")));
      if (mode == "inner_throw")
        throw wc::error(wc::sqlstate::object_not_in_prerequisite_state, "thrown by the inner lambda");
      return int32{41};
    });
    if (mode == "outer_pg")
      ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE), errmsg("outer error after inner %d", inner)));
    return inner + 1;
  });
  PG_RETURN_INT32(result);
}

// column() read inside a pg_call lambda (the engine's pattern), row and
// column chosen by the caller: out of range must be an error, not a crash.
WF_FUNCTION(boundary_probe_spi_column) {
  static wp::Statement two_columns{"SELECT 'alpha'::text, 'beta'::text", {}};
  int32 row = PG_GETARG_INT32(0), col = PG_GETARG_INT32(1);
  std::string copy;
  {
    wp::SpiScope spi;
    wp::execute(two_columns, nullptr, nullptr, /*read_only=*/true, 1);
    bool isnull = false;
    char* value = wp::pg_call([&] {
      Datum d = wp::column(static_cast<uint64>(row), col, &isnull);
      return isnull ? nullptr : TextDatumGetCString(d);
    });
    if (value) copy = value;
  }  // SPI_finish: the result is built in the caller's context, below
  return wp::pg_call([&] {
    return PointerGetDatum(cstring_to_text_with_len(copy.data(), static_cast<int>(copy.size())));
  });
}

// A PostgreSQL error raised by a statement run through the SPI helpers.
WF_FUNCTION(boundary_probe_spi_error) {
  static wp::Statement raise{"SELECT boundary_probe.raise($1, $2, $3, $4)",
                             {TEXTOID, TEXTOID, TEXTOID, TEXTOID}};
  wp::SpiScope spi;
  Datum args[4];
  char nulls[4];
  for (int i = 0; i < 4; ++i) {
    nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
    args[i] = PG_ARGISNULL(i) ? Datum(0) : PG_GETARG_DATUM(i);
  }
  wp::execute(raise, args, nulls, /*read_only=*/true);
  PG_RETURN_VOID();
}
