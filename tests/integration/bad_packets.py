#!/usr/bin/python3
"""Writes the bad-packet corpus of the dataplane/bad_packets test: a pcap in which every
frame but the canaries is something a parser can get wrong, and a JSON manifest of it.

The same seed always gives the same file. Between the bad frames run canaries: well-formed
UDP packets of one flow (198.51.100.1:40000 -> 192.0.2.1:9999, IPv4), each carrying its
index, which must all come out, in order, whatever came before them. The bad frames:
  reason:R    every malformed-frame reason of docs/dataplane.md (gen-traffic's Malformer,
              whose frames have exactly that one problem), each several times
  zero        zero-length records
  runt        1 to 13 bytes
  oversize    well-formed IPv4/UDP frames of 9018, 16384 and 65535 bytes (beyond any
              mbuf: they arrive as chains of segments)
  garbage     random bytes of random length under a forced EtherType (IPv4, IPv6, VLAN,
              QinQ or random)
  mutant      a well-formed TCP/UDP frame with random bytes of its headers overwritten
The manifest gives the total, the canary indices, and per category the count; the
reason:R and zero/runt categories name the drop reason they must be counted under.

Runs with Debian's /usr/bin/python3 (python3-scapy installed).
"""
import argparse
import importlib.util
import json
import os
import random
import struct

from scapy.all import IP, UDP, Ether, PcapWriter, Raw, raw

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "gen_traffic", os.path.join(HERE, "..", "..", "scripts", "gen-traffic.py"))
gen = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen)


class Frame(bytes):
    """Bytes written as they are; takes a .time like a scapy packet."""


def canary(index):
    return raw(Ether(src="02:00:00:ca:00:01", dst="02:00:00:ff:00:01") /
               IP(src="198.51.100.1", dst="192.0.2.1", id=index & 0xFFFF) /
               UDP(sport=40000, dport=9999) / Raw(b"canary %08d" % index))


def oversize(rng, size):
    """A well-formed IPv4/UDP frame of exactly `size` bytes (IPv4 caps it at 65535 + 14)."""
    body = bytes(rng.getrandbits(8) for _ in range(size - 14 - 20 - 8))
    return raw(Ether(src="02:00:00:0b:00:01", dst="02:00:00:ff:00:01") /
               IP(src="198.51.100.2", dst="192.0.2.2") / UDP(sport=40001, dport=53) / Raw(body))


def garbage(rng):
    ether = rng.choice([0x0800, 0x86DD, 0x8100, 0x88A8, rng.getrandbits(16)])
    n = rng.randint(0, 1600)
    return bytes(rng.getrandbits(8) for _ in range(12)) + struct.pack("!H", ether) + \
        bytes(rng.getrandbits(8) for _ in range(n))


def mutant(rng, m):
    """A consistent frame from the Malformer's builders, with 1 to 8 header bytes overwritten."""
    body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
    if rng.random() < 0.5:
        proto = rng.choice([6, 17])
        l4 = m.tcp(body=body) if proto == 6 else m.udp(body=body)
        frame = bytearray(m.ip_frame(rng.randint(0, 1), proto, l4))
    else:
        frame = bytearray(m.l2(gen.ETH_IPV4) + m.v4(17, m.udp(body=body)))
    headers = min(len(frame), 80)
    for _ in range(rng.randint(1, 8)):
        frame[rng.randrange(headers)] = rng.getrandbits(8)
    return bytes(frame)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=4,
                    help="how many times each reason and each fixed case comes round (default 4)")
    ap.add_argument("--random", type=int, default=400,
                    help="garbage and mutant frames of each kind (default 400)")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    reasons = gen.MALFORMED_REASONS + gen.GTPU_MALFORMED_REASONS
    m = gen.Malformer(random.Random("%d/malformed" % args.seed), True, len(reasons))
    bad = []  # (category, expected reason or None, bytes)
    for _ in range(args.rounds):
        for reason in reasons:
            bad.append(("reason:" + reason, reason, m.frame(reason)))
        bad.append(("zero", "eth_truncated", b""))
        bad.append(("runt", "eth_truncated", bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 13)))))
        for size in (9018, 16384, 65535 + 14):
            bad.append(("oversize", None, oversize(rng, size)))
    for _ in range(args.random):
        bad.append(("garbage", None, garbage(rng)))
        bad.append(("mutant", None, mutant(rng, m)))
    rng.shuffle(bad)

    writer = PcapWriter(args.out, linktype=1, sync=False, snaplen=262144)
    manifest = {"categories": {}, "reasons": {}, "canaries": []}
    index, t = 0, 1_700_000_000.0

    def write(data):
        nonlocal index
        f = Frame(data)
        f.time = t + index * 0.00001
        writer.write(f)
        index += 1

    for category, reason, data in bad:
        manifest["canaries"].append(index)
        write(canary(len(manifest["canaries"]) - 1))
        write(data)
        c = manifest["categories"]
        c[category] = c.get(category, 0) + 1
        if reason:
            manifest["reasons"][reason] = manifest["reasons"].get(reason, 0) + 1
    manifest["canaries"].append(index)
    write(canary(len(manifest["canaries"]) - 1))
    writer.close()
    manifest["packets"] = index
    with open(args.manifest, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
