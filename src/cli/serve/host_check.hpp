// DNS rebinding: a web page whose name an attacker points at 127.0.0.1 reads
// a loopback dashboard as its own origin (the browser sends that name as
// Host). So a dashboard on loopback answers only requests addressed to it by
// an IP literal, `localhost` (or a name under it), or a name given with
// --allow-host; on another address the check applies once a name is given.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace workflow::serve {

struct HostPolicy {
  bool enforce = false;
  std::vector<std::string> allowed;  // lower case, without port
};

// The policy for a server listening on `listen_host` with --allow-host names.
HostPolicy host_policy(std::string_view listen_host, const std::vector<std::string>& allow_hosts);

// Whether a request with this Host header may be answered.
bool host_allowed(const HostPolicy& policy, std::string_view host_header);

}  // namespace workflow::serve
