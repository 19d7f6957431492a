#!/usr/bin/python3
"""Traffic for the services integration test, and an independent check of segx's output.

  services_check.py gen OUT.pcap
      flows of TCP and UDP over IPv4 and IPv6 with payloads; in flow "split" the DPI pattern
      attack-signature is cut across two consecutive packets of one segment; one packet
      carries "mirror-me"; one IPv4 UDP flow has no UDP checksum.
  services_check.py check --in IN --out OUT --tap TAP --records JSONL --segment-packets N
      compares segx's records and captures with what the services must give, computed here
      with hashlib, zstd-free reasoning and scapy's own checksums; prints one line per
      problem and exits 1 if there is any.
"""
import argparse
import hashlib
import ipaddress
import json
import sys

from scapy.all import IP, TCP, UDP, Ether, IPv6, PcapWriter, Raw, rdpcap

PATTERN = b"attack-signature"


def gen(out):
    w = PcapWriter(out, linktype=1, sync=True)
    t = 1700000000.0
    flows = [
        ("split", "10.1.0.1", "192.0.2.10", 6, 40001, 80),
        ("plain4", "10.1.0.2", "192.0.2.11", 6, 40002, 443),
        ("plain6", "2001:db8:1::1", "2001:db8:ff::1", 6, 40003, 80),
        ("udp6", "2001:db8:1::2", "2001:db8:ff::2", 17, 40004, 53),
        ("udp4", "10.1.0.3", "192.0.2.12", 17, 40005, 53),
        ("nocsum", "10.1.0.4", "192.0.2.13", 17, 40006, 5353),
    ]
    payloads = {name: [] for name, *_ in flows}
    for i in range(10):
        for name in payloads:
            text = ("%s packet %d; " % (name, i)).encode() * (3 + i % 5)
            payloads[name].append(text)
    # The pattern ends one packet and starts the next, inside one 4-packet segment.
    payloads["split"][1] = b"first half ... attack-sig"
    payloads["split"][2] = b"nature ... second half"
    payloads["plain4"][5] = b"please mirror-me to the tap"
    for i in range(10):
        for name, src, dst, proto, sport, dport in flows:
            l3 = IP(src=src, dst=dst) if ":" not in src else IPv6(src=src, dst=dst)
            l4 = TCP(sport=sport, dport=dport, flags="PA", seq=1000 + i) if proto == 6 else \
                UDP(sport=sport, dport=dport)
            pkt = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / l3 / l4 / \
                Raw(payloads[name][i])
            data = bytes(pkt)
            if name == "nocsum":
                pkt = Ether(data)
                pkt[UDP].chksum = 0
                data = bytes(pkt)
            w.write(Ether(data))
            t += 0.00001
    w.close()


def l4_payload(pkt):
    """The bytes after the TCP or UDP header, by the headers' own lengths (scapy would dissect
    port 53 payloads as DNS)."""
    if UDP in pkt:
        return bytes(pkt[UDP])[8:pkt[UDP].len]
    l3 = pkt[IP] if IP in pkt else pkt[IPv6]
    ip_payload = l3.len - 4 * l3.ihl if IP in pkt else l3.plen
    return bytes(pkt[TCP])[4 * pkt[TCP].dataofs:ip_payload]


def flow_of(pkt):
    l3 = pkt[IP] if IP in pkt else pkt[IPv6]
    l4 = pkt[TCP] if TCP in pkt else pkt[UDP]
    proto = 6 if TCP in pkt else 17
    return (str(ipaddress.ip_address(l3.src)), str(ipaddress.ip_address(l3.dst)), proto,
            l4.sport, l4.dport)


def checksums_ok(data):
    """True when scapy computes the same IP and L4 checksums as the frame carries."""
    pkt = Ether(data)
    again = Ether(data)
    if IP in again:
        del again[IP].chksum
    l4 = again[TCP] if TCP in again else again[UDP]
    if UDP in pkt and IP in pkt and pkt[UDP].chksum == 0:
        again[UDP].chksum = 0  # no checksum stays no checksum
    else:
        del l4.chksum
    return bytes(Ether(bytes(again))) == bytes(pkt)


def common_prefix(a, b):
    x = int(a) ^ int(b)
    return a.max_prefixlen - x.bit_length()


def check(args):
    problems = []
    inp = rdpcap(args.inp)
    out = rdpcap(args.out)
    tap = rdpcap(args.tap) if args.tap else []
    records = [json.loads(line) for line in open(args.records) if line.strip()]

    # Records: fingerprint by hashlib, DPI matches where the pattern is.
    by_flow = {}
    for pkt in inp:
        by_flow.setdefault(flow_of(pkt), []).append(pkt)
    split_found = 0
    for r in records:
        f = r["flow"]
        key = (f["src"], f["dst"], f["proto"], f["sport"], f["dport"])
        seg = by_flow[key][r["first_seq"]:r["first_seq"] + r["packets"]]
        data = b"".join(l4_payload(p) for p in seg)
        s = r["services"]
        want = hashlib.sha256(data).hexdigest()
        if s["fingerprint"]["digest"] != want:
            problems.append("segment %d: digest %s, hashlib says %s" %
                            (r["segment"], s["fingerprint"]["digest"], want))
        if s["compress"]["in_bytes"] != len(data) or s["compress"]["verify_failed"] != 0:
            problems.append("segment %d: compress %s over %d payload bytes" %
                            (r["segment"], s["compress"], len(data)))
        has_pattern = PATTERN in data
        got = s["dpi"]["patterns"].get("split", 0)
        if got != (1 if has_pattern else 0):
            problems.append("segment %d: dpi split=%d, pattern %s in its payloads" %
                            (r["segment"], got, "is" if has_pattern else "is not"))
        split_found += got
        if "absent" in s["dpi"]["patterns"]:
            problems.append("segment %d: dpi reports a pattern that is not there" % r["segment"])
    if split_found != 1:
        problems.append("the split pattern was found %d times, expected once" % split_found)

    # Output: same packets in the same order, addresses anonymized consistently and
    # prefix-preserving, payloads unchanged, every checksum valid.
    if len(out) != len(inp):
        problems.append("%d packets out, %d in" % (len(out), len(inp)))
    mapping = {}
    for i, (a, b) in enumerate(zip(inp, out)):
        if flow_of(a)[2:] != flow_of(b)[2:] or l4_payload(a) != l4_payload(b):
            problems.append("packet %d: ports or payload changed (order?)" % i)
            break
        if not checksums_ok(bytes(b)):
            problems.append("packet %d: a checksum is not valid after anonymization" % i)
        for x, y in zip(flow_of(a)[:2], flow_of(b)[:2]):
            if mapping.setdefault(x, y) != y:
                problems.append("packet %d: %s mapped to %s and %s" % (i, x, mapping[x], y))
            if x == y:
                problems.append("packet %d: address %s not anonymized" % (i, x))
    addrs = [(ipaddress.ip_address(k), ipaddress.ip_address(v)) for k, v in mapping.items()]
    for a, aa in addrs:
        for b, bb in addrs:
            if a.version == b.version and common_prefix(a, b) != common_prefix(aa, bb):
                problems.append("prefix not preserved: %s %s -> %s %s" % (a, b, aa, bb))

    # Mirror: exactly the packet with the mirror pattern, as it went out.
    mirrored = [p for p in tap]
    if len(mirrored) != 1 or b"mirror-me" not in l4_payload(mirrored[0]):
        problems.append("mirror port got %d packets, expected the one with mirror-me" % len(mirrored))

    for p in problems:
        print(p)
    print("checked %d records, %d packets in, %d out, %d mirrored, %d addresses: %s" %
          (len(records), len(inp), len(out), len(mirrored), len(mapping),
           "ok" if not problems else "%d problem(s)" % len(problems)))
    return 1 if problems else 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("out")
    c = sub.add_parser("check")
    c.add_argument("--in", dest="inp", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--tap")
    c.add_argument("--records", required=True)
    a = ap.parse_args()
    if a.cmd == "gen":
        gen(a.out)
        return 0
    return check(a)


if __name__ == "__main__":
    sys.exit(main())
