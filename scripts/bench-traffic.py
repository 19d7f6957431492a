#!/usr/bin/python3
"""Writes a benchmark capture: frames of one size (64 or 1500 bytes, FCS not included) over
many flows, IPv4 and IPv6, TCP and UDP, some with an 802.1Q tag. net_pcap replays it forever
(infinite_rx=1) in scripts/bench.sh. Payloads are printable text so dpi scans realistic
bytes. The same arguments write the same file."""
import argparse
import random

from scapy.all import IP, TCP, UDP, Dot1Q, Ether, IPv6, Raw, wrpcap

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("--out", required=True)
ap.add_argument("--size", type=int, default=64, help="frame length in bytes (>= 64)")
ap.add_argument("--packets", type=int, default=4096)
ap.add_argument("--flows", type=int, default=1024)
ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()
rng = random.Random(a.seed)
words = b"GET POST Host: user-agent accept cookie session index.html image.png json data ".split()


def frame(i):
    flow = rng.randrange(a.flows)
    kind = flow % 10  # per flow: 6 IPv4, 3 IPv6, 1 IPv4 in a VLAN
    sport, dport = 1024 + flow, (80, 443, 53, 8080)[flow % 4]
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    if kind < 6:
        l3 = IP(src=f"10.{flow >> 8}.{flow & 255}.1", dst="192.0.2.10")
    elif kind < 9:
        l3 = IPv6(src=f"2001:db8::{flow:x}", dst="2001:db8:ffff::10")
    else:
        eth = eth / Dot1Q(vlan=100 + flow % 4)
        l3 = IP(src=f"10.{flow >> 8}.{flow & 255}.1", dst="192.0.2.10")
    # TCP where it fits: an IPv6 TCP header does not fit a 64-byte frame.
    use_tcp = flow % 2 == 0 and not (kind >= 6 and kind < 9 and a.size < 80)
    l4 = TCP(sport=sport, dport=dport, flags="A", seq=i) if use_tcp else UDP(sport=sport, dport=dport)
    p = eth / l3 / l4
    room = a.size - len(p)
    text = b""
    while len(text) < room:
        text += rng.choice(words)
    return p / Raw(text[:room]) if room > 0 else p


frames = [frame(i) for i in range(a.packets)]
assert all(len(f) == a.size for f in frames), "every frame must be --size bytes"
wrpcap(a.out, frames)
print(f"bench-traffic: {a.packets} frames of {a.size} bytes, {a.flows} flows -> {a.out}")
