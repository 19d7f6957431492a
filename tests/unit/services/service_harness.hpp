#pragma once
// Runs one service of lib/services over one segment's packets the way a worker does: open,
// process in runs, close into a record.

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dataplane/service.hpp"
#include "services/services.hpp"

namespace segx::test {

/// Creates a service from its options written as YAML flow text ("{level: 3}").
inline std::unique_ptr<dataplane::Service> make_service(const std::string& name,
                                                        const std::string& options,
                                                        const config::Config& config = {}) {
  services::register_services();
  const dataplane::ServiceFactory* f = dataplane::ServiceRegistry::instance().find(name);
  if (f == nullptr) return nullptr;
  auto s = f->create(config::ServiceConfig{name, YAML::Load(options), "profiles[0].services[0]"},
                     config);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error());
  return s.ok() ? std::move(s).value() : nullptr;
}

/// One segment through a service: packets in runs of the given sizes (all at once when
/// empty). Returns the service's result as JSON; verdicts, if given, get each packet's bits.
inline nlohmann::json run_segment(dataplane::Service& service, const std::vector<rte_mbuf*>& pkts,
                                  std::vector<uint16_t> runs = {},
                                  std::vector<uint8_t>* verdicts = nullptr) {
  auto seg = std::make_unique<dataplane::Segment>();
  EXPECT_LE(service.state_size(), dataplane::segment_state_bytes);
  service.open(*seg, seg->state);
  if (runs.empty()) runs.push_back(static_cast<uint16_t>(pkts.size()));
  std::vector<uint8_t> v(pkts.size(), 0);
  size_t at = 0;
  for (uint16_t n : runs) {
    service.process(*seg, seg->state, pkts.data() + at, n, v.data() + at);
    at += n;
  }
  dataplane::ResultWriter out(*seg);
  service.close(*seg, seg->state, out);
  if (verdicts) *verdicts = v;
  return nlohmann::json::parse("{" + std::string(seg->result, seg->result_len) + "}");
}

}  // namespace segx::test
