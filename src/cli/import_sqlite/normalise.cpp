// import-sqlite: canonical values and table checksums (normalise.hpp).
#include "normalise.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace workflow::import {
namespace {

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::optional<std::string> canonical_double(std::string_view raw, const char* format) {
  const std::string text(raw);
  char* end = nullptr;
  const double d = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size()) return "?" + text;
  if (d == 0) return std::string("0");  // -0 and 0 are one value
  if (std::isnan(d)) return std::string("nan");
  char buf[64];
  std::snprintf(buf, sizeof buf, format, d);
  return std::string(buf);
}

// 93.50 -> 93.5, 100.00 -> 100, +7 -> 7, -0.0 -> 0; an exponent goes through a double.
std::optional<std::string> canonical_decimal(std::string_view raw) {
  std::string s(raw);
  if (s.find_first_of("eE") != std::string::npos || lower(s) == "nan" ||
      lower(s).find("inf") != std::string::npos)
    return canonical_double(raw, "%.15g");
  if (!s.empty() && s[0] == '+') s.erase(0, 1);
  if (s.find('.') != std::string::npos) {
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
  }
  if (s == "-0" || s.empty()) s = "0";
  return s;
}

std::optional<std::string> canonical_boolean(std::string_view raw) {
  const std::string v = lower(raw);
  if (v == "1" || v == "t" || v == "true" || v == "y" || v == "yes" || v == "on") return "t";
  if (v == "0" || v == "f" || v == "false" || v == "n" || v == "no" || v == "off") return "f";
  return "?" + std::string(raw);
}

// FNV-1a over the bytes, then the splitmix64 finaliser (so a sum of row
// hashes has no linear structure for a single changed byte to cancel).
struct Hasher {
  std::uint64_t h = 1469598103934665603ULL;
  void bytes(const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n; ++i) { h ^= p[i]; h *= 1099511628211ULL; }
  }
  std::uint64_t finish() const {
    std::uint64_t z = h + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
};

}  // namespace

ValueKind kind_for_pg_type(std::string_view t) {
  if (t == "boolean") return ValueKind::boolean;
  if (t == "bigint" || t == "integer" || t == "smallint") return ValueKind::integer;
  if (t == "double precision" || t == "real") return ValueKind::floating;
  if (starts_with(t, "numeric")) return ValueKind::numeric;
  if (starts_with(t, "timestamp") || t == "date") return ValueKind::timestamp;
  if (t == "bytea") return ValueKind::bytes;
  return ValueKind::text;
}

const char* kind_name(ValueKind kind) {
  switch (kind) {
    case ValueKind::text: return "text";
    case ValueKind::integer: return "integer";
    case ValueKind::floating: return "float";
    case ValueKind::numeric: return "decimal";
    case ValueKind::boolean: return "boolean";
    case ValueKind::timestamp: return "epoch milliseconds";
    case ValueKind::bytes: return "hex";
  }
  return "text";
}

std::optional<std::string> canonical(ValueKind kind, std::optional<std::string_view> raw) {
  if (!raw) return std::nullopt;
  switch (kind) {
    case ValueKind::text: return std::string(*raw);
    case ValueKind::integer:
      return (!raw->empty() && (*raw)[0] == '+') ? std::string(raw->substr(1)) : std::string(*raw);
    case ValueKind::floating: return canonical_double(*raw, "%.17g");
    case ValueKind::numeric: return canonical_decimal(*raw);
    case ValueKind::boolean: return canonical_boolean(*raw);
    case ValueKind::timestamp: return std::string(*raw);
    case ValueKind::bytes: return lower(*raw);
  }
  return std::string(*raw);
}

void TableChecksum::add_row(const std::vector<std::optional<std::string>>& values) {
  Hasher h;
  for (const auto& v : values) {
    const unsigned char tag = v ? 1 : 0;
    h.bytes(&tag, 1);
    if (!v) continue;
    const std::uint64_t n = v->size();
    h.bytes(&n, sizeof n);
    h.bytes(v->data(), v->size());
  }
  sum_ += h.finish();
  ++rows_;
}

std::string TableChecksum::hex() const {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(sum_));
  return buf;
}

}  // namespace workflow::import
