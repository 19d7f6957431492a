#!/usr/bin/python3
"""Sends every packet of a pcap, in order, on one interface (run it inside a namespace).

  veth_traffic.py send IFACE PCAP

Capture on the other side with tcpdump: scapy's sniffer drops packets at a few thousand
per second, and libpcap (unlike a raw socket) restores VLAN tags the kernel strips.
"""
import sys

from scapy.all import RawPcapReader, conf


def send(iface, pcap):
    sock = conf.L2socket(iface=iface)
    n = 0
    for data, _ in RawPcapReader(pcap):
        sock.send(data)
        n += 1
    sock.close()
    print("sent %d" % n, flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "send":
        send(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
