// ParseEndpoint and ResolveRegion (declared in s3_store.h): pure functions
// of the configuration.
#include <string>
#include <string_view>
#include <vector>

#include "backends/s3_store.h"
#include "common/strings.h"

namespace dsfs {

Result<S3Endpoint> ParseEndpoint(const std::string& url) {
  S3Endpoint ep;
  std::string_view rest = url;
  if (rest.substr(0, 7) == "http://") {
    ep.scheme = "http";
    rest.remove_prefix(7);
  } else if (rest.substr(0, 8) == "https://") {
    ep.scheme = "https";
    rest.remove_prefix(8);
  } else {
    return Status::InvalidArgument("url '" + url + "' must start with http:// or https://");
  }
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find_first_of("/?#@ ") != std::string_view::npos) {
    return Status::InvalidArgument("url '" + url +
                                   "' must be scheme://host[:port] (no path, query or user)");
  }
  std::string_view host = rest;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {  // [v6]:port
    size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      return Status::InvalidArgument("url '" + url + "': unterminated IPv6 address");
    }
    host = rest.substr(0, close + 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Status::InvalidArgument("url '" + url + "': bad port");
      port = after.substr(1);
    }
  } else if (size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (host.empty()) return Status::InvalidArgument("url '" + url + "' has no host");
  ep.host = AsciiLower(host);
  ep.host_port = ep.host;
  if (!port.empty() || rest.find(':') != std::string_view::npos) {
    int p = 0;
    if (!ParseInteger(port, &p) || p < 1 || p > 65535) {
      return Status::InvalidArgument("url '" + url + "': bad port '" + std::string(port) + "'");
    }
    ep.host_port += ":" + std::to_string(p);
  }
  return ep;
}

std::string ResolveRegion(const S3Config& config) {
  if (!config.region.empty()) return config.region;
  auto ep = ParseEndpoint(config.endpoint);
  if (!ep.ok()) return "us-east-1";
  std::vector<std::string> labels;
  size_t start = 0;
  const std::string& h = ep->host;
  while (start <= h.size()) {
    size_t dot = h.find('.', start);
    if (dot == std::string::npos) dot = h.size();
    labels.push_back(h.substr(start, dot - start));
    start = dot + 1;
  }
  for (size_t i = 0; i + 2 < labels.size(); ++i) {
    if (labels[i] == "obs" && labels[i + 2] == "myhuaweicloud" && !labels[i + 1].empty()) {
      return labels[i + 1];
    }
    if (labels[i] == "s3" && labels[i + 2] == "amazonaws" && !labels[i + 1].empty()) {
      return labels[i + 1];
    }
  }
  return "us-east-1";
}

}  // namespace dsfs
