// Section eal: how DPDK starts; leaves the vdev names and PCI addresses ports refer to.

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "config/sections/context.hpp"

namespace segx::config::sections {

// ---- eal ----------------------------------------------------------------------------
void read_eal(Context& ctx, const Value& v, EalConfig& eal) {
  MapReader m(v);
  if (auto lc = m.get("lcores")) {
    std::optional<std::vector<unsigned>> ids;
    if (lc->is_list()) {
      ids.emplace();
      for (const Value& item : lc->list()) {
        // An entry is an lcore id, or "lcore@cpu" to run that lcore on another CPU.
        std::optional<int64_t> n;
        std::optional<unsigned> cpu;
        const auto text = item.is_scalar() ? item.yaml().Scalar() : std::string();
        if (const size_t at = text.find('@'); at != std::string::npos) {
          auto lcore = parse_range(std::string_view(text).substr(0, at), max_lcores - 1);
          auto c = parse_range(std::string_view(text).substr(at + 1), 1023);
          if (!lcore || !c || lcore.value().lo != lcore.value().hi ||
              c.value().lo != c.value().hi) {
            item.error("expected an lcore id or lcore@cpu such as 2@1, got '" + text + "'");
            continue;
          }
          n = lcore.value().lo;
          cpu = c.value().lo;
        } else {
          n = item.as_int(0, max_lcores - 1);
        }
        if (!n) continue;
        if (std::find(ids->begin(), ids->end(), *n) != ids->end()) {
          item.error("lcore " + std::to_string(*n) + " is listed twice");
        }
        ids->push_back(static_cast<unsigned>(*n));
        if (cpu) eal.cpus[static_cast<unsigned>(*n)] = *cpu;
      }
      std::sort(ids->begin(), ids->end());
    } else {
      ids = lc->as_parsed<std::vector<unsigned>>(
          [](std::string_view s) { return parse_id_list(s, max_lcores); });
    }
    if (ids && ids->empty()) lc->error("at least one lcore is needed");
    if (ids && !ids->empty()) eal.lcores = *ids;
  }
  eal.main_lcore = eal.lcores.front();
  if (auto ml = m.get("main_lcore")) {
    if (auto n = ml->as_int(0, max_lcores - 1)) {
      eal.main_lcore = static_cast<unsigned>(*n);
      if (std::find(eal.lcores.begin(), eal.lcores.end(), eal.main_lcore) == eal.lcores.end()) {
        ml->error("main lcore " + std::to_string(*n) + " is not in eal.lcores");
      }
    }
  }
  if (auto mem = m.get("memory")) {
    if (auto n = mem->as_size(64ull << 20, 1ull << 40)) {
      if (*n % (1ull << 20) != 0) {
        mem->error("must be a whole number of MiB (EAL reserves memory in MiB)");
      } else {
        eal.memory_bytes = *n;
      }
    }
  }
  m.read("hugepages", eal.hugepages);
  m.read_name("file_prefix", eal.file_prefix);
  if (auto vd = m.get("vdevs")) {
    for (const Value& item : vd->list()) {
      auto s = item.as_string();
      if (!s) continue;
      const std::string name = s->substr(0, s->find(','));
      if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
          })) {
        item.error(
            "expected a vdev such as net_pcap0,rx_pcap=in.pcap (driver name and "
            "number, then comma-separated arguments), got '" +
            *s + "'");
        continue;
      }
      if (ctx.vdev_names.count(name)) {
        item.error("vdev '" + name + "' is declared twice");
        continue;
      }
      ctx.vdev_names.insert(name);
      ctx.vdev_values.emplace(name, item);
      eal.vdevs.push_back(*s);
    }
  }
  if (auto pci = m.get("pci_allow")) {
    for (const Value& item : pci->list(true)) {
      auto s = item.as_string();
      if (!s) continue;
      const size_t comma = s->find(',');
      auto addr = parse_pci_address(std::string_view(*s).substr(0, std::min(comma, s->size())));
      if (!addr) {
        item.error(addr.error());
        continue;
      }
      if (ctx.pci_addresses.count(addr.value())) {
        item.error("PCI device " + addr.value() + " is listed twice");
        continue;
      }
      ctx.pci_addresses.insert(addr.value());
      eal.pci_allow.push_back(addr.value() + (comma == std::string::npos ? "" : s->substr(comma)));
    }
  }
  m.read_choice("log_level", eal.log_level,
                {"emergency", "alert", "critical", "error", "warning", "notice", "info", "debug"});
  if (auto ex = m.get("extra_args")) {
    for (const Value& item : ex->list()) {
      if (auto s = item.as_string()) eal.extra_args.push_back(*s);
    }
  }
}

}  // namespace segx::config::sections
