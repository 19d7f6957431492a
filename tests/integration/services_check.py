#!/usr/bin/python3
"""Traffic for the services integration test, and an independent check of segx's output.

  services_check.py gen OUT.pcap [--bulk]
      flows of TCP and UDP over IPv4 and IPv6 with payloads; in flow "split" the DPI pattern
      attack-signature is cut across two consecutive packets of one segment; one packet
      carries "mirror-me"; one IPv4 UDP flow has no UDP checksum. With --bulk, one more TCP
      flow (to port 80) of larger payloads: log text, random bytes, and a 6000-byte one that
      takes a chain of mbufs.
  services_check.py check --in IN --out OUT --tap TAP --records JSONL --segment-packets N
      compares segx's records and captures with what the services must give, computed here
      with hashlib, zstd-free reasoning and scapy's own checksums; prints one line per
      problem and exits 1 if there is any.
  services_check.py compress --in IN --out OUT --records JSONL --profile P=DEVICE:LEVEL ...
      for a chain of one `compress` entry with engine compressdev per profile: the output
      equals the input, and each record's sizes are what Python's zlib gives (raw DEFLATE at
      the level, each payload at most its own size) on a zlib PMD device, at most the input
      on another; no errors, no failed verification.
"""
import argparse
import hashlib
import ipaddress
import json
import random
import sys
import zlib

from scapy.all import IP, TCP, UDP, Ether, IPv6, PcapWriter, Raw, rdpcap

PATTERN = b"attack-signature"


def bulk_payloads():
    rng = random.Random(5)
    out = []
    for i in range(10):
        if i % 3 == 1:
            out.append(bytes(rng.getrandbits(8) for _ in range(1000 + 40 * i)))
            continue
        text = b""
        size = 6000 if i == 5 else 1200 + 20 * i
        while len(text) < size:
            text += b"2026-11-26 worker %d flow %d closed after %d packets\n" % (
                rng.randrange(4), rng.randrange(1000), rng.randrange(100))
        out.append(text[:size])
    return out


def gen(out, bulk=False):
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
    if bulk:
        flows.append(("bulk", "10.1.0.5", "192.0.2.14", 6, 40007, 80))
    payloads = {name: [] for name, *_ in flows}
    for i in range(10):
        for name in payloads:
            text = ("%s packet %d; " % (name, i)).encode() * (3 + i % 5)
            payloads[name].append(text)
    if bulk:
        payloads["bulk"] = bulk_payloads()
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


def deflated_size(data, level):
    """Raw DEFLATE as the zlib PMD makes it: 32 KiB window, memLevel 8, default strategy."""
    c = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY)
    return len(c.compress(data) + c.flush())


def check_compress(args):
    problems = []
    inp = rdpcap(args.inp)
    out = rdpcap(args.out)
    records = [json.loads(line) for line in open(args.records) if line.strip()]
    expect = {}
    for spec in args.profile:
        name, device = spec.split("=", 1)
        device, level = device.split(":")
        expect[name] = (device, int(level))

    if [bytes(p) for p in out] != [bytes(p) for p in inp]:
        problems.append("output packets differ from the input (%d out, %d in)" % (len(out), len(inp)))
    by_flow = {}
    for pkt in inp:
        by_flow.setdefault(flow_of(pkt), []).append(pkt)
    seen = set()
    for r in records:
        f = r["flow"]
        key = (f["src"], f["dst"], f["proto"], f["sport"], f["dport"])
        seg = by_flow[key][r["first_seq"]:r["first_seq"] + r["packets"]]
        payloads = [l4_payload(p) for p in seg if l4_payload(p)]
        c = r["services"].get("compress")
        if r["profile"] not in expect or c is None:
            problems.append("segment %d: profile %s, compress %s" % (r["segment"], r["profile"], c))
            continue
        device, level = expect[r["profile"]]
        seen.add(r["profile"])
        want = {"algorithm": "deflate", "engine": "compressdev", "device": device, "level": level,
                "packets": len(payloads), "in_bytes": sum(len(p) for p in payloads), "errors": 0}
        if c.get("verify_failed", 0) != 0:
            problems.append("segment %d: verify_failed %d" % (r["segment"], c["verify_failed"]))
        if device.startswith("compress_zlib"):
            sizes = [deflated_size(p, level) for p in payloads]
            want["out_bytes"] = sum(min(n, len(p)) for n, p in zip(sizes, payloads))
            want["incompressible"] = sum(1 for n, p in zip(sizes, payloads) if n >= len(p))
        elif not 0 < c["out_bytes"] <= want["in_bytes"]:
            problems.append("segment %d: out_bytes %d for %d bytes in" %
                            (r["segment"], c["out_bytes"], want["in_bytes"]))
        for k, v in want.items():
            if c.get(k) != v:
                problems.append("segment %d (%s): %s is %s, expected %s" %
                                (r["segment"], r["profile"], k, c.get(k), v))
        ratio = c["in_bytes"] / c["out_bytes"] if c["out_bytes"] else 1.0
        if abs(c["ratio"] - ratio) > 0.0011:
            problems.append("segment %d: ratio %s, in/out is %.3f" % (r["segment"], c["ratio"], ratio))
    if seen != set(expect):
        problems.append("records for profiles %s, expected %s" % (sorted(seen), sorted(expect)))

    for p in problems:
        print(p)
    print("checked %d compress records, %d packets in, %d out: %s" %
          (len(records), len(inp), len(out), "ok" if not problems else "%d problem(s)" % len(problems)))
    return 1 if problems else 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("out")
    g.add_argument("--bulk", action="store_true")
    c = sub.add_parser("check")
    c.add_argument("--in", dest="inp", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--tap")
    c.add_argument("--records", required=True)
    z = sub.add_parser("compress")
    z.add_argument("--in", dest="inp", required=True)
    z.add_argument("--out", required=True)
    z.add_argument("--records", required=True)
    z.add_argument("--profile", action="append", default=[], help="NAME=DEVICE:LEVEL")
    a = ap.parse_args()
    if a.cmd == "gen":
        gen(a.out, a.bulk)
        return 0
    if a.cmd == "compress":
        return check_compress(a)
    return check(a)


if __name__ == "__main__":
    sys.exit(main())
