#include "config/config.hpp"

namespace segx::config {

int Config::port_index(std::string_view name) const {
  for (size_t i = 0; i < ports.size(); ++i) {
    if (ports[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int Config::default_output_index(size_t input) const {
  if (pipeline.default_action == DefaultAction::drop || input >= ports.size()) return -1;
  auto by = pipeline.default_by_input.find(ports[input].name);
  if (by != pipeline.default_by_input.end() && by->second == "drop") return -1;
  return port_index(by != pipeline.default_by_input.end() ? by->second : pipeline.default_output);
}

int Config::profile_index(std::string_view name) const {
  for (size_t i = 0; i < profiles.size(); ++i) {
    if (profiles[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

unsigned Config::tx_lcores() const {
  unsigned tx = 0;
  for (const auto& lc : pipeline.lcores)
    tx += (lc.roles & role_tx) != 0;
  return tx;
}

std::optional<std::string> Config::tx_queue_shortfall(const PortConfig& port) const {
  const unsigned tx = tx_lcores();
  if (port.tx_queues >= tx) return std::nullopt;
  return "port '" + port.name + "' has " + std::to_string(port.tx_queues) +
         " tx queue(s) but the pipeline has " + std::to_string(tx) + " tx lcores";
}

}  // namespace segx::config
