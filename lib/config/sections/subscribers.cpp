// Section subscribers: recipients, their devices and what is granted to them; leaves the
// ids blocks and tokens name.

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <vector>

#include "config/sections/context.hpp"

namespace segx::config::sections {

// ---- subscribers --------------------------------------------------------------------
void read_subscribers(Context& ctx, const Value& v) {
  struct Granted {
    IpPrefix prefix;
    std::string subscriber;
    Value at;
  };
  std::vector<Granted> granted;                 // every prefix a subscriber holds, to find overlaps
  std::map<std::string, std::string> owner_of;  // identifier -> device id, for duplicates
  std::set<std::string> device_ids;
  const auto claim = [&](const Value& at, const std::string& key, const std::string& device) {
    auto [it, fresh] = owner_of.emplace(key, device);
    if (!fresh)
      at.error(
          key + " already belongs to " +
          (it->second.starts_with("subscriber ") ? it->second : "device '" + it->second + "'"));
  };
  for (const Value& item : v.list()) {
    MapReader m(item);
    if (!m.valid()) continue;
    SubscriberConfig s;
    m.read_name("id", s.id, true);
    if (!s.id.empty() && !ctx.subscriber_ids.insert(s.id).second) {
      item.error("subscriber id '" + s.id + "' is used twice");
    }
    // Grants: what the subscriber may name in a bid besides its devices.
    m.read_each<IpPrefix>("prefixes", parse_ip_prefix, [&](const Value& x, IpPrefix p) {
      s.prefixes.push_back(p);
      granted.push_back({p, s.id, x});
    });
    m.read_each<MacAddress>("macs", parse_mac, [&](const Value& x, MacAddress mac) {
      s.macs.push_back(mac);
      claim(x, "MAC " + format_mac(mac), "subscriber " + s.id);
    });
    m.read_each<Range>("vlans", range_parser(1, 4094), [&](const Value& x, Range r) {
      for (uint32_t id = r.lo; id <= r.hi; ++id) {
        s.vlans.push_back(static_cast<uint16_t>(id));
        claim(x, "VLAN " + std::to_string(id), "subscriber " + s.id);
      }
    });
    auto devices = m.get("devices");
    if (!devices) {
      if (s.prefixes.empty() && s.macs.empty() && s.vlans.empty())
        item.error("a subscriber needs devices or grants (prefixes, macs, vlans)");
      ctx.c.subscribers.push_back(s);
      continue;
    }
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
        granted.push_back({p, s.id, x});
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
  // An address belongs to one subscriber: no prefix of one (granted or a device's) may
  // overlap another's, or two customers could both claim it in a bid.
  std::sort(granted.begin(), granted.end(), [](const Granted& a, const Granted& b) {
    if (a.prefix.address.family != b.prefix.address.family)
      return a.prefix.address.family < b.prefix.address.family;
    if (a.prefix.address.bytes != b.prefix.address.bytes)
      return a.prefix.address.bytes < b.prefix.address.bytes;
    return a.prefix.length < b.prefix.length;
  });
  std::vector<const Granted*> open;  // enclosing prefixes, outermost first
  for (const Granted& g : granted) {
    while (!open.empty() && !prefix_contains(open.back()->prefix, g.prefix))
      open.pop_back();
    for (const Granted* o : open) {
      if (o->subscriber != g.subscriber) {
        g.at.error("address " + format_prefix(g.prefix) + " overlaps " + format_prefix(o->prefix) +
                   " of subscriber '" + o->subscriber + "': an address belongs to one subscriber");
        break;
      }
    }
    open.push_back(&g);
  }
}

}  // namespace segx::config::sections
