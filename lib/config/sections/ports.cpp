// Section ports: the Ethernet ports; every other section refers to them by name (check_port_ref).

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "config/sections/context.hpp"

namespace segx::config::sections {
namespace {

void check_device(Context& ctx, const Value& v, const std::string& device) {
  if (auto pci = parse_pci_address(device)) {
    if (!ctx.pci_addresses.count(pci.value())) {
      v.error("PCI device " + pci.value() + " is not in eal.pci_allow");
    }
    return;
  }
  if (ctx.vdev_names.count(device)) return;
  std::vector<std::string> known(ctx.vdev_names.begin(), ctx.vdev_names.end());
  v.error("device '" + device + "' is neither a vdev in eal.vdevs (" +
          (known.empty() ? std::string("none") : join(known)) +
          ") nor a PCI address in eal.pci_allow");
}

}  // namespace

// ---- ports --------------------------------------------------------------------------
void read_ports(Context& ctx, const Value& v) {
  auto items = v.items();
  if (!items) return;
  if (items->empty()) v.error("at least one port is needed");
  std::map<std::string, std::string> device_owner;
  for (const Value& item : *items) {
    MapReader m(item);
    if (!m.valid()) continue;
    PortConfig p;
    m.read_name("name", p.name, true);
    if (auto dev = m.require("device")) {
      if (auto s = dev->as_string()) {
        p.device = *s;
        check_device(ctx, *dev, p.device);
        if (device_owner.count(p.device)) {
          dev->error("device '" + p.device + "' is already port '" + device_owner[p.device] + "'");
        }
        device_owner[p.device] = p.name;
      }
    }
    m.read("rx_queues", p.rx_queues, 0, 64);
    m.read("tx_queues", p.tx_queues, 1, 64);
    m.read("rx_descriptors", p.rx_descriptors, 32, 32768);
    m.read("tx_descriptors", p.tx_descriptors, 32, 32768);
    m.read("mtu", p.mtu, 68, 16000);
    m.read("promiscuous", p.promiscuous);
    m.read("link_wait", p.link_wait, Duration(0), Duration(5min));
    m.read("gtpu", p.gtpu);
    if (p.name.empty()) continue;
    if (p.name == "drop") {
      item.error("'drop' is reserved (pipeline.default.by_input uses it); choose another name");
      continue;
    }
    if (ctx.port_values.count(p.name)) {
      item.error("port name '" + p.name + "' is used twice");
      continue;
    }
    ctx.port_values.emplace(p.name, item);
    ctx.c.ports.push_back(p);
  }
  // Only an ethdev vdev (net_*, or one of DPDK's eth_* aliases) can be a port; vdevs of
  // other classes (compress_zlib0 for the compress service, say) are for services.
  for (const auto& [vdev, value] : ctx.vdev_values) {
    const bool ethdev = vdev.rfind("net_", 0) == 0 || vdev.rfind("eth_", 0) == 0;
    if (ethdev && !device_owner.count(vdev)) {
      value.warning("vdev '" + vdev + "' is not used by any port; it is created but not polled");
    }
  }
}

bool check_port_ref(Context& ctx, const Value& v, const std::string& name) {
  if (ctx.port_values.count(name)) return true;
  std::vector<std::string> names;
  for (const auto& p : ctx.c.ports)
    names.push_back(p.name);
  v.error("no port named '" + name + "' (ports: " + join(names) + ")");
  return false;
}

}  // namespace segx::config::sections
