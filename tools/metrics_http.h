// The optional HTTP endpoint of a mount's counters: GET /metrics answers
// Metrics::Render() (the Prometheus text format, version 0.0.4) from
// libmicrohttpd's own thread. Bound to one address (loopback by default);
// anything but GET /metrics is 404 or 405.
#pragma once

#include <memory>
#include <string>

#include "common/metrics.h"
#include "common/status.h"

struct MHD_Daemon;

namespace dsfs {

class MetricsServer {
 public:
  // Listens on addr:port (an IPv4 or IPv6 literal). InvalidArgument for an
  // address that does not parse; IoError when the port cannot be bound.
  // metrics must outlive the server.
  static Result<std::unique_ptr<MetricsServer>> Start(const std::string& addr, unsigned port,
                                                      const Metrics& metrics);
  ~MetricsServer();  // stops listening; requests in progress are finished
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  const Metrics& metrics() const { return metrics_; }

 private:
  explicit MetricsServer(const Metrics& metrics) : metrics_(metrics) {}
  const Metrics& metrics_;
  MHD_Daemon* daemon_ = nullptr;
};

}  // namespace dsfs
