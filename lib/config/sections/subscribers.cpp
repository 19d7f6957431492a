// Section subscribers: recipients and their devices; leaves the ids blocks and tokens name.

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "config/sections/context.hpp"

namespace segx::config::sections {

// ---- subscribers --------------------------------------------------------------------
void read_subscribers(Context& ctx, const Value& v) {
  std::map<std::string, std::string> owner_of;  // identifier -> device id, for duplicates
  std::set<std::string> device_ids;
  const auto claim = [&](const Value& at, const std::string& key, const std::string& device) {
    auto [it, fresh] = owner_of.emplace(key, device);
    if (!fresh) at.error(key + " already belongs to device '" + it->second + "'");
  };
  for (const Value& item : v.list()) {
    MapReader m(item);
    if (!m.valid()) continue;
    SubscriberConfig s;
    m.read_name("id", s.id, true);
    if (!s.id.empty() && !ctx.subscriber_ids.insert(s.id).second) {
      item.error("subscriber id '" + s.id + "' is used twice");
    }
    auto devices = m.require("devices");
    if (!devices) continue;
    for (const Value& dv : devices->list()) {
      MapReader dm(dv);
      if (!dm.valid()) continue;
      DeviceConfig d;
      dm.read_name("id", d.id, true);
      if (!d.id.empty()) ctx.device_ids.insert(d.id);
      if (!d.id.empty() && !device_ids.insert(d.id).second) {
        dv.error("device id '" + d.id + "' is used twice");
      }
      dm.read_each<IpPrefix>("ip", parse_ip_prefix, [&](const Value& x, IpPrefix p) {
        d.ips.push_back(p);
        claim(x, "address " + format_prefix(p), d.id);
      });
      dm.read_each<MacAddress>("mac", parse_mac, [&](const Value& x, MacAddress mac) {
        d.macs.push_back(mac);
        claim(x, "MAC " + format_mac(mac), d.id);
      });
      dm.read_each<std::string>("phone", parse_phone, [&](const Value& x, std::string phone) {
        claim(x, "telephone number " + phone, d.id);
        d.phones.push_back(std::move(phone));
      });
      dm.read_each<Range>("vlan", range_parser(1, 4094), [&](const Value&, Range r) {
        for (uint32_t id = r.lo; id <= r.hi; ++id)
          d.vlans.push_back(static_cast<uint16_t>(id));
      });
      if (d.ips.empty() && d.macs.empty() && d.phones.empty() && d.vlans.empty()) {
        dv.error("a device needs at least one identifier (ip, mac, phone or vlan)");
      }
      s.devices.push_back(d);
    }
    ctx.c.subscribers.push_back(s);
  }
}

}  // namespace segx::config::sections
