#include "common/metrics.h"

namespace dsfs {

Counter& Metrics::GetCounter(const std::string& name, const std::string& help) {
  std::lock_guard lock(mu_);
  auto& e = counters_[name];
  if (!e.counter) e.counter = std::make_unique<Counter>();
  if (e.help.empty()) e.help = help;
  return *e.counter;
}

std::string Metrics::Render() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, e] : counters_) {
    if (!e.help.empty()) out += "# HELP " + name + " " + e.help + "\n";
    out += "# TYPE " + name + " counter\n";
    out += name + " " + std::to_string(e.counter->value()) + "\n";
  }
  return out;
}

}  // namespace dsfs
