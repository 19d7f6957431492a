#!/usr/bin/python3
"""Writes a reproducible pcap of mixed traffic for the segx demo and tests.

The same --seed and --packets always give the same file, byte for byte: flows of TCP
(handshake, data, FIN), UDP and ICMP/ICMPv6 over IPv4 and IPv6, some 802.1Q tagged, some
QinQ, with varied payload sizes. Timestamps advance 10 us per packet from a fixed epoch.

Runs with Debian's /usr/bin/python3, for which python3-scapy is installed.
"""
import argparse
import random
import sys

from scapy.all import (ICMP, IP, TCP, UDP, Dot1AD, Dot1Q, Ether, ICMPv6EchoRequest, IPv6, Raw,
                       PcapWriter)


def make_flow(rng, index, jumbo, qinq):
    """Returns the packets of one flow (a list of scapy packets)."""
    v6 = rng.random() < 0.3
    kind = rng.choices(["tcp", "udp", "icmp"], weights=[5, 4, 1])[0]
    client_mac = "02:00:00:%02x:%02x:%02x" % (1, index >> 8 & 0xFF, index & 0xFF)
    server_mac = "02:00:00:ff:00:01"
    if v6:
        src, dst = "2001:db8:1::%x" % (index + 1), "2001:db8:ff::%x" % rng.randint(1, 50)
    else:
        src, dst = "10.1.%d.%d" % (index >> 8 & 0xFF, index & 0xFF or 1), "192.0.2.%d" % rng.randint(1, 50)
    tag = rng.random()
    sport, dport = rng.randint(1024, 65535), rng.choice([80, 443, 8080, 5060, 3478, 1935])

    def l2(up):
        eth = Ether(src=client_mac if up else server_mac, dst=server_mac if up else client_mac)
        if tag < 0.15 and qinq:
            return eth / Dot1AD(vlan=1000) / Dot1Q(vlan=100 + index % 10)
        if tag < 0.40:
            return eth / Dot1Q(vlan=100 + index % 10, prio=index % 8)
        return eth

    def l3(up):
        a, b = (src, dst) if up else (dst, src)
        return IPv6(src=a, dst=b) if v6 else IP(src=a, dst=b, id=rng.randint(0, 65535))

    def payload(size):
        return Raw(bytes(rng.getrandbits(8) for _ in range(size)))

    max_payload = 8000 if jumbo and rng.random() < 0.05 else 1400
    pkts = []
    if kind == "tcp":
        seq, ack = rng.randint(0, 2**32 - 1), rng.randint(0, 2**32 - 1)
        pkts.append(l2(True) / l3(True) / TCP(sport=sport, dport=dport, flags="S", seq=seq))
        pkts.append(l2(False) / l3(False) / TCP(sport=dport, dport=sport, flags="SA", seq=ack, ack=seq + 1))
        seq, ack = seq + 1, ack + 1
        for _ in range(rng.randint(1, 12)):
            up = rng.random() < 0.5
            size = rng.randint(1, max_payload)
            if up:
                pkts.append(l2(True) / l3(True) / TCP(sport=sport, dport=dport, flags="PA", seq=seq, ack=ack) / payload(size))
                seq = (seq + size) % 2**32
            else:
                pkts.append(l2(False) / l3(False) / TCP(sport=dport, dport=sport, flags="PA", seq=ack, ack=seq) / payload(size))
                ack = (ack + size) % 2**32
        pkts.append(l2(True) / l3(True) / TCP(sport=sport, dport=dport, flags="FA", seq=seq, ack=ack))
    elif kind == "udp":
        for _ in range(rng.randint(1, 10)):
            up = rng.random() < 0.6
            a, b = (sport, dport) if up else (dport, sport)
            pkts.append(l2(up) / l3(up) / UDP(sport=a, dport=b) / payload(rng.randint(0, max_payload)))
    else:
        for i in range(rng.randint(1, 4)):
            echo = ICMPv6EchoRequest(id=index, seq=i) if v6 else ICMP(id=index, seq=i)
            pkts.append(l2(True) / l3(True) / echo / payload(56))
    return pkts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="pcap file to write")
    ap.add_argument("--packets", type=int, default=2000, help="number of packets (default 2000)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--jumbo", action="store_true", help="include some frames of up to 8 KB")
    ap.add_argument("--no-qinq", action="store_true",
                    help="no 802.1ad (QinQ) frames: DPDK 22.11's af_packet PMD rewrites their outer "
                         "TPID 0x88a8 to 0x8100")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    # Several flows are open at once, interleaved the way a link carries them.
    open_flows, written, index = [], 0, 0
    writer = PcapWriter(args.out, linktype=1, sync=False)
    t = 1_700_000_000.0
    while written < args.packets:
        while len(open_flows) < 8:
            open_flows.append(make_flow(rng, index, args.jumbo, not args.no_qinq))
            index += 1
        flow = rng.choice(open_flows)
        pkt = flow.pop(0)
        if not flow:
            open_flows.remove(flow)
        pkt.time = t + written * 0.00001
        writer.write(pkt)
        written += 1
    writer.close()
    print("gen-traffic: wrote %d packets in %d flows to %s" % (written, index, args.out), file=sys.stderr)


if __name__ == "__main__":
    main()
