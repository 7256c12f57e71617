#include "serve/host_check.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace workflow::serve {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// "Name:port", "[v6]:port" or a bare name: the name, lower case, without a
// trailing dot; brackets of an IPv6 literal removed.
std::string name_of(std::string_view host) {
  std::string_view name = host;
  if (!name.empty() && name.front() == '[') {
    const auto close = name.find(']');
    name = close == std::string_view::npos ? name.substr(1) : name.substr(1, close - 1);
  } else if (const auto colon = name.rfind(':'); colon != std::string_view::npos &&
             name.find(':') == colon) {  // one colon: a port (more: a bare IPv6 literal)
    name = name.substr(0, colon);
  }
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return lower(name);
}

bool is_ip_literal(const std::string& name) {
  unsigned char buf[16];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

bool is_localhost(const std::string& name) {
  const std::string suffix = ".localhost";
  return name == "localhost" ||
         (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0);
}

}  // namespace

HostPolicy host_policy(std::string_view listen_host, const std::vector<std::string>& allow_hosts) {
  HostPolicy p;
  for (const auto& h : allow_hosts) p.allowed.push_back(name_of(h));
  const std::string listen = name_of(listen_host);
  unsigned char v4[4];
  const bool loopback = is_localhost(listen) || listen == "::1" ||
                        (inet_pton(AF_INET, listen.c_str(), v4) == 1 && v4[0] == 127);
  p.enforce = loopback || !p.allowed.empty();
  return p;
}

bool host_allowed(const HostPolicy& policy, std::string_view host_header) {
  if (!policy.enforce || host_header.empty()) return true;  // no Host: not a browser
  const std::string name = name_of(host_header);
  if (is_ip_literal(name) || is_localhost(name)) return true;
  return std::find(policy.allowed.begin(), policy.allowed.end(), name) != policy.allowed.end();
}

}  // namespace workflow::serve
