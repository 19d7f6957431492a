#!/usr/bin/python3
"""Computes what segx must output for a capture, from docs/dataplane.md and no segx code.

The integration tests compare segx's segment records, output captures and drop counters
with this.

  segment_oracle.py --config segx.yaml --pcap in.pcap --port in [--manifest m.json] [--gtpu]
                    --out expected.json

Every packet of --pcap arrives on port --port, in order. The result (JSON):

  records  the segment records segx must write, in the order they close (at the end, the
           segments still open close with reason "shutdown", in the order their flows
           appeared): {"profile", "flow": {port, vlan, family, proto, src, dst, sport, dport},
           "first_seq", "packets", "bytes", "close"}
  outputs  per port name (every configured port), the capture indices sent out of it, in
           input order (segx keeps the order within a flow)
  drops    {"malformed": {reason: count}, "no_profile": count}; no_profile counts what a
           default action (pipeline.default.action or a by_input value) drops

Frames are parsed from their bytes here (scapy's dissectors accept malformed headers, so
they cannot name drop reasons); each IP packet's flow key is then derived again with scapy's
dissectors and the two must agree. With --manifest (written by scripts/gen-traffic.py), the
malformed frames and reasons found here must be exactly those the generator injected, and
its non-IP frames must be found not to be IP (without --gtpu, the gtpu_* frames it injected
are plain UDP and are not checked).

Segments closing on time or idle cannot be predicted from a capture: a profile whose
segment time or idle is above 0 and below 1m is refused (tests set them to 1h). GTP-U
decapsulation is on with --gtpu or when the port has `gtpu: true`.

Runs with Debian's /usr/bin/python3 (python3-scapy, python3-yaml).
"""
import argparse
import ipaddress
import json
import re
import socket
import struct
import sys

import yaml
from scapy.all import IP, TCP, UDP, Dot1AD, Dot1Q, Ether, IPv6, RawPcapReader, load_contrib
from scapy.layers.inet6 import (IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop,
                                IPv6ExtHdrRouting)
from scapy.layers.sctp import SCTP

load_contrib("gtp")
from scapy.contrib.gtp import GTP_U_Header  # noqa: E402  (after load_contrib)

REASONS = [
    "eth_truncated", "vlan_truncated", "ipv4_truncated", "ipv4_bad_version", "ipv4_bad_ihl",
    "ipv4_bad_length", "ipv6_truncated", "ipv6_bad_version", "ipv6_ext_truncated",
    "ipv6_ext_chain_too_long", "tcp_truncated", "tcp_bad_offset", "udp_truncated",
    "udp_bad_length", "sctp_truncated", "icmp_truncated", "gtpu_truncated", "gtpu_bad_header",
    "headers_too_long",
]
PROTOCOLS = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1, "icmpv6": 58, "gre": 47, "esp": 50, "ah": 51}
PORT_PROTOCOLS = (6, 17, 132)
VLAN_TPIDS = (0x8100, 0x88A8)
# IPv6 extension headers walked to find the L4 protocol: Hop-by-Hop, Routing, Fragment,
# Destination Options, Mobility, HIP, Shim6. AH and ESP are protocols a profile can match
# (protocol: ah / esp), so the walk stops at them.
IPV6_EXTENSIONS = (0, 43, 44, 60, 135, 139, 140)
MAX_IPV6_EXTENSIONS = 8
PARSE_WINDOW = 512
GTPU_PORT = 2152
TCP_FIN, TCP_RST = 0x01, 0x04


def fail(message):
    raise SystemExit("segment_oracle: " + message)


# ---- parsing ------------------------------------------------------------------------------

class Malformed(Exception):
    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def need(end, limit, reason):
    """A header ends at `end`; the bytes run to `limit`: fewer is `reason`, beyond the parse
    window (with the bytes present) is headers_too_long."""
    if end > limit:
        raise Malformed(reason)
    if end > PARSE_WINDOW:
        raise Malformed("headers_too_long")


class Info:
    """What a frame is: its flow key fields, DSCP, TCP flags."""
    family = proto = dscp = sport = dport = 0
    src = dst = ""
    tcp_flags = None  # None when no TCP header was read
    fragment = gtpu = False


def parse_frame(b, gtpu):
    """Returns (vlans, Info) for an IP frame, (vlans, None) for a frame that is not IP;
    raises Malformed."""
    n = len(b)
    need(14, n, "eth_truncated")
    ether_type, off, vlans = struct.unpack_from("!H", b, 12)[0], 14, []
    while ether_type in VLAN_TPIDS:
        if len(vlans) == 2:
            return vlans, None  # a third tag: not IP
        need(off + 4, n, "vlan_truncated")
        tci, ether_type = struct.unpack_from("!HH", b, off)
        vlans.append(tci & 0x0FFF)
        off += 4
    if ether_type == 0x0800:
        return vlans, parse_ipv4(b, off, n, gtpu)
    if ether_type == 0x86DD:
        return vlans, parse_ipv6(b, off, n, gtpu)
    return vlans, None


def parse_ipv4(b, off, end, gtpu):
    need(off + 20, end, "ipv4_truncated")
    if b[off] >> 4 != 4:
        raise Malformed("ipv4_bad_version")
    hlen = (b[off] & 0x0F) * 4
    if hlen < 20:
        raise Malformed("ipv4_bad_ihl")
    need(off + hlen, end, "ipv4_truncated")
    total = struct.unpack_from("!H", b, off + 2)[0]
    if total < hlen:
        raise Malformed("ipv4_bad_length")
    if off + total > end:
        raise Malformed("ipv4_truncated")
    info = Info()
    info.family, info.dscp, info.proto = 4, b[off + 1] >> 2, b[off + 9]
    info.src = socket.inet_ntop(socket.AF_INET, b[off + 12:off + 16])
    info.dst = socket.inet_ntop(socket.AF_INET, b[off + 16:off + 20])
    flags_frag = struct.unpack_from("!H", b, off + 6)[0]
    info.fragment = bool(flags_frag & 0x2000 or flags_frag & 0x1FFF)
    l4 = off + hlen if flags_frag & 0x1FFF == 0 else None
    return parse_l4(b, info, l4, off + total, gtpu)


def parse_ipv6(b, off, end, gtpu):
    need(off + 40, end, "ipv6_truncated")
    if b[off] >> 4 != 6:
        raise Malformed("ipv6_bad_version")
    plen = struct.unpack_from("!H", b, off + 4)[0]
    ip_end = off + 40 + plen
    if ip_end > end:
        raise Malformed("ipv6_truncated")
    info = Info()
    info.family, info.dscp = 6, (struct.unpack_from("!H", b, off)[0] >> 4 & 0xFF) >> 2
    info.src = socket.inet_ntop(socket.AF_INET6, b[off + 8:off + 24])
    info.dst = socket.inet_ntop(socket.AF_INET6, b[off + 24:off + 40])
    nh, p, count = b[off + 6], off + 40, 0
    l4 = None
    while True:
        if nh not in IPV6_EXTENSIONS:
            l4 = p
            break
        count += 1
        if count > MAX_IPV6_EXTENSIONS:
            raise Malformed("ipv6_ext_chain_too_long")
        if nh == 44:
            need(p + 8, ip_end, "ipv6_ext_truncated")
            offset_m = struct.unpack_from("!H", b, p + 2)[0]
            # An atomic fragment (offset 0, M 0) is a whole packet (RFC 6946).
            info.fragment = info.fragment or bool(offset_m & 0xFFF9)
            nh, p = b[p], p + 8
            if offset_m & 0xFFF8:
                break  # a later fragment: what follows is data, not headers
        else:
            need(p + 2, ip_end, "ipv6_ext_truncated")
            hlen = (b[p + 1] + 1) * 8
            need(p + hlen, ip_end, "ipv6_ext_truncated")
            nh, p = b[p], p + hlen
    info.proto = nh
    return parse_l4(b, info, l4, ip_end, gtpu)


def parse_l4(b, info, l4, ip_end, gtpu):
    """l4: offset of the L4 header, None in a non-first fragment."""
    if l4 is None:
        return info
    proto = info.proto
    if proto == 6:
        need(l4 + 20, ip_end, "tcp_truncated")
        doff = b[l4 + 12] >> 4
        if doff < 5:
            raise Malformed("tcp_bad_offset")
        need(l4 + doff * 4, ip_end, "tcp_truncated")
        info.tcp_flags = b[l4 + 13]
    elif proto == 17:
        need(l4 + 8, ip_end, "udp_truncated")
        length = struct.unpack_from("!H", b, l4 + 4)[0]
        # A first fragment's UDP length covers the whole datagram, not this fragment.
        if length < 8 or (not info.fragment and l4 + length > ip_end):
            raise Malformed("udp_bad_length")
        dport = struct.unpack_from("!H", b, l4 + 2)[0]
        if gtpu and not info.fragment and dport == GTPU_PORT:
            inner = parse_gtpu(b, l4 + 8, l4 + length)
            if inner is not None:
                return inner
    elif proto == 132:
        need(l4 + 12, ip_end, "sctp_truncated")
    elif proto == 1:
        need(l4 + 8, ip_end, "icmp_truncated")
    elif proto == 58:
        need(l4 + 4, ip_end, "icmp_truncated")
    if proto in PORT_PROTOCOLS and not info.fragment:
        info.sport, info.dport = struct.unpack_from("!HH", b, l4)
    return info


def parse_gtpu(b, p, end):
    """The inner packet's Info for a G-PDU, None for other GTP-U messages (plain UDP)."""
    need(p + 8, end, "gtpu_truncated")
    flags, msg_type = b[p], b[p + 1]
    if flags >> 5 != 1 or not flags & 0x10:
        raise Malformed("gtpu_bad_header")
    if msg_type != 255:
        return None
    q = p + 8
    if flags & 0x07:  # E, S or PN: sequence number, N-PDU number, next extension type
        need(q + 4, end, "gtpu_truncated")
        next_type, q = b[q + 3], q + 4
        while next_type != 0:
            need(q + 1, end, "gtpu_truncated")
            length = b[q] * 4
            if length == 0:
                raise Malformed("gtpu_bad_header")
            need(q + length, end, "gtpu_truncated")
            next_type, q = b[q + length - 1], q + length
    if q >= end:
        return None  # no inner packet: left as plain UDP
    version = b[q] >> 4
    if version == 4:
        info = parse_ipv4(b, q, end, False)
    elif version == 6:
        info = parse_ipv6(b, q, end, False)
    else:
        return None  # not IP inside: left as plain UDP
    info.gtpu = True
    return info


def scapy_key(frame, gtpu):
    """The same key fields from scapy's dissectors: (vlans, family, proto, src, dst, sport,
    dport, dscp), the cross-check of parse_frame for packets that are not malformed."""
    layer = Ether(frame).payload
    vlans = []
    while isinstance(layer, (Dot1AD, Dot1Q)):
        vlans.append(layer.vlan)
        layer = layer.payload
    udp = layer.payload if isinstance(layer, (IP, IPv6)) else None
    if (gtpu and isinstance(udp, UDP) and udp.dport == GTPU_PORT and isinstance(udp.payload, GTP_U_Header)
            and udp.payload.gtp_type == 255 and not is_fragment(layer)):
        inner = layer[GTP_U_Header].payload
        while inner is not None and not isinstance(inner, (IP, IPv6)) and inner.payload:
            inner = inner.payload
        if isinstance(inner, (IP, IPv6)):
            layer = inner
    if isinstance(layer, IP):
        family, proto, dscp = 4, layer.proto, layer.tos >> 2
    elif isinstance(layer, IPv6):
        family, dscp = 6, layer.tc >> 2
        proto, ext = layer.nh, layer.payload
        while isinstance(ext, (IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment)):
            proto, ext = ext.nh, ext.payload
    else:
        return vlans, None
    sport = dport = 0
    if not is_fragment(layer):
        for cls in (TCP, UDP, SCTP):
            if proto == {TCP: 6, UDP: 17, SCTP: 132}[cls] and cls in layer:
                sport, dport = layer[cls].sport, layer[cls].dport
    return vlans, (family, proto, layer.src, layer.dst, sport, dport, dscp)


def is_fragment(ip):
    if isinstance(ip, IP):
        return bool(ip.flags.MF or ip.frag)
    if isinstance(ip, IPv6) and IPv6ExtHdrFragment in ip:
        f = ip[IPv6ExtHdrFragment]
        return bool(f.m or f.offset)
    return False


# ---- configuration ------------------------------------------------------------------------

def parse_duration_ns(text):
    units = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9,
             "d": 86400 * 10**9}
    text = str(text)
    groups = re.findall(r"(\d+)(ns|us|ms|s|m|h|d)", text)
    if not groups or "".join(n + u for n, u in groups) != text:
        fail("not a duration: %r" % text)
    return sum(int(n) * units[u] for n, u in groups)


def parse_size(value):
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"(\d+)(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?", str(value))
    if not m:
        fail("not a size: %r" % value)
    factor = {None: 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
              "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}[m.group(2)]
    return int(m.group(1)) * factor


def as_list(value):
    return value if isinstance(value, list) else [value]


def parse_ranges(value):
    out = []
    for item in as_list(value):
        text = str(item)
        lo, _, hi = text.partition("-")
        out.append((int(lo), int(hi or lo)))
    return out


def parse_protocol(item):
    if isinstance(item, int):
        return item
    if str(item) in PROTOCOLS:
        return PROTOCOLS[str(item)]
    if str(item).isdigit():
        return int(item)
    fail("unknown protocol %r" % item)


class Profile:
    def __init__(self, doc):
        self.name = doc["name"]
        self.output = doc["output"]
        match = doc.get("match") or {}
        self.ports = as_list(match["input_ports"]) if "input_ports" in match else None
        self.vlan = parse_ranges(match["vlan"]) if "vlan" in match else None
        self.src = [ipaddress.ip_network(str(x)) for x in as_list(match["src"])] if "src" in match else None
        self.dst = [ipaddress.ip_network(str(x)) for x in as_list(match["dst"])] if "dst" in match else None
        self.protocol = [parse_protocol(x) for x in as_list(match["protocol"])] if "protocol" in match else None
        self.src_port = parse_ranges(match["src_port"]) if "src_port" in match else None
        self.dst_port = parse_ranges(match["dst_port"]) if "dst_port" in match else None
        self.dscp = parse_ranges(match["dscp"]) if "dscp" in match else None
        seg = doc.get("segment") or {}
        self.packets = int(seg.get("packets", 64))
        self.bytes = parse_size(seg.get("bytes", 0))
        self.tcp_close = bool(seg.get("tcp_close", True))
        for key, default in (("time", "100ms"), ("idle", "20ms")):
            ns = parse_duration_ns(seg.get(key, default))
            if 0 < ns < 60 * 10**9:
                fail("profile %s: segment.%s is %s: segments closing on time or idle cannot be "
                     "predicted from a capture; set it to 0s or at least 1m (tests use 1h)"
                     % (self.name, key, seg.get(key, default)))

    def matches(self, port, vlan, info):
        def in_ranges(x, ranges):
            return any(lo <= x <= hi for lo, hi in ranges)

        def in_prefixes(addr, nets):
            a = ipaddress.ip_address(addr)
            return any(a.version == n.version and a in n for n in nets)

        return ((self.ports is None or port in self.ports)
                and (self.vlan is None or in_ranges(vlan, self.vlan))
                and (self.src is None or in_prefixes(info.src, self.src))
                and (self.dst is None or in_prefixes(info.dst, self.dst))
                and (self.protocol is None or info.proto in self.protocol)
                and (self.src_port is None or in_ranges(info.sport, self.src_port))
                and (self.dst_port is None or in_ranges(info.dport, self.dst_port))
                and (self.dscp is None or in_ranges(info.dscp, self.dscp)))


# ---- segments -----------------------------------------------------------------------------

class Flow:
    def __init__(self, record_flow, profile):
        self.record_flow, self.profile, self.next_seq, self.segment = record_flow, profile, 0, None


def run(config, frames, port, gtpu):
    """Returns (records, outputs, drops, per-index parse results)."""
    port_names = [p["name"] for p in config.get("ports") or []]
    if port not in port_names:
        fail("no port named %r in the configuration (ports: %s)" % (port, ", ".join(port_names)))
    pipeline = config.get("pipeline") or {}
    flow_table = pipeline.get("flow_table") or {}
    if "idle_timeout" in flow_table and parse_duration_ns(flow_table["idle_timeout"]) < 60 * 10**9:
        fail("pipeline.flow_table.idle_timeout is below 1m: evictions cannot be predicted")
    default = pipeline.get("default") or {}
    action = default.get("action", "forward")
    default_out = None
    if action == "forward":
        default_out = (default.get("by_input") or {}).get(port, default.get("output"))
        if default_out is None:
            fail("pipeline.default forwards but gives no output for port %r" % port)
    profiles = [Profile(p) for p in config.get("profiles") or []]

    records, flows, order = [], {}, []
    outputs = {name: [] for name in port_names}
    malformed, no_profile, parsed = {}, 0, []

    def close(flow, reason):
        seg = flow.segment
        records.append({"profile": flow.profile.name, "flow": flow.record_flow,
                        "first_seq": seg["first_seq"], "packets": seg["packets"],
                        "bytes": seg["bytes"], "close": reason})
        flow.segment = None

    for index, frame in enumerate(frames):
        try:
            vlans, info = parse_frame(frame, gtpu)
        except Malformed as e:
            malformed[e.reason] = malformed.get(e.reason, 0) + 1
            parsed.append(("malformed", e.reason))
            continue
        parsed.append(("ip", (vlans, info)) if info is not None else ("non_ip", None))
        flow = None
        if info is not None:
            outer_vlan = vlans[0] if vlans else 0
            inner_vlan = vlans[1] if len(vlans) > 1 else 0
            key = (port, outer_vlan, inner_vlan, info.family, info.proto, info.src, info.dst,
                   info.sport, info.dport)
            flow = flows.get(key)
            if flow is None:
                profile = next((p for p in profiles if p.matches(port, outer_vlan, info)), None)
                record_flow = {"port": port, "vlan": vlans, "family": info.family, "proto": info.proto,
                               "src": info.src, "dst": info.dst, "sport": info.sport, "dport": info.dport}
                flow = flows[key] = Flow(record_flow, profile)
                order.append(flow)
            seq = flow.next_seq
            flow.next_seq += 1
        if flow is None or flow.profile is None:
            if default_out is None or default_out == "drop":
                no_profile += 1
            else:
                outputs.setdefault(default_out, []).append(index)
            continue
        prof = flow.profile
        outputs.setdefault(prof.output, []).append(index)
        if flow.segment is None:
            flow.segment = {"first_seq": seq, "packets": 0, "bytes": 0}
        seg = flow.segment
        seg["packets"] += 1
        seg["bytes"] += len(frame)
        flags = info.tcp_flags if info.proto == 6 and info.tcp_flags is not None else 0
        if prof.packets > 0 and seg["packets"] >= prof.packets:
            close(flow, "packets")
        elif prof.bytes > 0 and seg["bytes"] >= prof.bytes:
            close(flow, "bytes")
        elif prof.tcp_close and flags & TCP_FIN:
            close(flow, "tcp_fin")
        elif prof.tcp_close and flags & TCP_RST:
            close(flow, "tcp_rst")
    for flow in order:
        if flow.segment is not None:
            close(flow, "shutdown")
    drops = {"malformed": {r: malformed[r] for r in REASONS if r in malformed}, "no_profile": no_profile}
    return records, outputs, drops, parsed


def cross_check(frames, parsed, gtpu, manifest):
    """Compares the byte parser with scapy's dissectors and with the generator's manifest."""
    problems = []
    for index, (kind, value) in enumerate(parsed):
        if kind != "ip":
            continue
        vlans, info = value
        mine = (vlans, (info.family, info.proto, info.src, info.dst, info.sport, info.dport, info.dscp))
        s_vlans, s_key = scapy_key(frames[index], gtpu)
        if s_key is not None:
            a = ipaddress.ip_address(s_key[2]), ipaddress.ip_address(s_key[3])
            s_key = s_key[:2] + (socket.inet_ntop(socket.AF_INET6 if a[0].version == 6 else socket.AF_INET,
                                                  a[0].packed),
                                 socket.inet_ntop(socket.AF_INET6 if a[1].version == 6 else socket.AF_INET,
                                                  a[1].packed)) + s_key[4:]
        if (s_vlans, s_key) != mine:
            problems.append("packet %d: parsed %r, scapy dissects %r" % (index, mine, (s_vlans, s_key)))
    if manifest is not None:
        if manifest.get("packets", len(frames)) != len(frames):
            problems.append("manifest: %d packets, capture: %d" % (manifest["packets"], len(frames)))
        indices = manifest.get("malformed_indices", [])
        injected = dict(zip(indices, manifest.get("malformed_reasons") or ["malformed"] * len(indices)))
        if not gtpu:  # decapsulation off: the GTP-U problems are plain UDP payload
            injected = {i: r for i, r in injected.items() if not r.startswith("gtpu_")}
        for index, (kind, value) in enumerate(parsed):
            found = value if kind == "malformed" else None
            want = injected.get(index)
            if want == "malformed" and found is not None:
                continue  # the manifest gives no reasons
            if found != want:
                problems.append("packet %d: found %s, the manifest says %s"
                                % (index, found or "well-formed", want or "well-formed"))
        for index in manifest.get("non_ip_indices", []):
            if index >= len(parsed) or parsed[index][0] != "non_ip":
                problems.append("packet %d: the manifest says not IP" % index)
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="the segx YAML configuration")
    ap.add_argument("--pcap", required=True, help="the capture that arrives on --port")
    ap.add_argument("--port", required=True, help="the port name it arrives on")
    ap.add_argument("--manifest", help="gen-traffic.py's manifest, checked against what is found")
    ap.add_argument("--gtpu", action="store_true", help="GTP-U decapsulation on for the port")
    ap.add_argument("--out", required=True, help="where to write the expected results (JSON)")
    args = ap.parse_args()

    with open(args.config) as f:
        config = yaml.safe_load(f)
    if not isinstance(config, dict):
        fail("%s: not a segx configuration" % args.config)
    gtpu = args.gtpu or any(p.get("name") == args.port and p.get("gtpu") is True
                            for p in config.get("ports") or [])
    frames = [data for data, _ in RawPcapReader(args.pcap)]
    manifest = None
    if args.manifest:
        with open(args.manifest) as f:
            manifest = json.load(f)
    records, outputs, drops, parsed = run(config, frames, args.port, gtpu)
    problems = cross_check(frames, parsed, gtpu, manifest)
    if problems:
        for p in problems[:20]:
            print("segment_oracle: " + p, file=sys.stderr)
        fail("%d disagreement(s) about the capture; no result written" % len(problems))
    with open(args.out, "w") as f:
        json.dump({"records": records, "outputs": outputs, "drops": drops}, f, indent=1)
        f.write("\n")
    print("segment_oracle: %d packets, %d records, %d malformed, %d dropped by the default action; "
          "out: %s" % (len(frames), len(records), sum(drops["malformed"].values()), drops["no_profile"],
                       ", ".join("%s %d" % (k, len(v)) for k, v in outputs.items())), file=sys.stderr)


if __name__ == "__main__":
    main()
