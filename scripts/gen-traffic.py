#!/usr/bin/python3
"""Writes a reproducible pcap of mixed traffic for the segx demo and tests.

The same arguments always give the same file, byte for byte: flows of TCP (handshake, data,
FIN), UDP and ICMP/ICMPv6 over IPv4 and IPv6, some 802.1Q tagged, some QinQ, with varied
payload sizes. Timestamps advance 10 us per packet from a fixed epoch.

Opt-in extras (without them the output is what it always was):
  --fragments     some large UDP datagrams (IPv4 and IPv6) go out as fragments
  --gtpu          some flows are GTP-U G-PDUs (outer IPv4, UDP port 2152) carrying IPv4/IPv6
                  TCP or UDP, plus a few GTP-U echo messages (plain UDP)
  --malformed N   N malformed frames spread through the capture, cycling through the drop
                  reasons of docs/dataplane.md (each one triggers exactly its reason), and a
                  few ARP frames (not IP: they take the default action)
  --manifest F    JSON: total packets, malformed reasons and indices, non-IP indices
Each extra draws from its own seeded generator, so enabling one does not change the others.

Runs with Debian's /usr/bin/python3, for which python3-scapy is installed.
"""
import argparse
import json
import random
import struct
import sys

from scapy.all import (ARP, ICMP, IP, TCP, UDP, Dot1AD, Dot1Q, Ether, ICMPv6EchoRequest, IPv6,
                       IPv6ExtHdrFragment, PcapWriter, Raw, fragment, fragment6, raw)


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


# ---- --fragments -------------------------------------------------------------------------

def fragment_some(frng, pkts):
    """--fragments: in some UDP flows, some datagrams get a 1.4-4 KB payload and are sent as
    fragments (IPv4: fragment(); IPv6: a Fragment header and fragment6()). Every fragment
    is a well-formed IP packet; the first carries the whole UDP header."""
    if UDP not in pkts[0] or frng.random() >= 0.4:
        return pkts
    out = []
    for p in pkts:
        if frng.random() >= 0.6:
            out.append(p)
            continue
        q = p.copy()
        q[UDP].remove_payload()
        size = frng.randint(1401, 4000)
        q[UDP].add_payload(Raw(bytes(frng.getrandbits(8) for _ in range(size))))
        if IP in q:
            frags = fragment(q, fragsize=frng.choice([1480, 1400, 1200, 800]))
        else:
            ip6 = q[IPv6]
            l2_len = len(raw(q)) - len(raw(ip6))
            udp = ip6.payload
            ip6.remove_payload()
            ip6.add_payload(IPv6ExtHdrFragment(nh=17, id=frng.getrandbits(32)) / udp)
            mtu = frng.choice([1500, 1280, 1000])
            if 40 + 8 + 8 + size <= mtu:
                mtu = 1280  # it must fragment: no atomic fragments (a Fragment header, offset 0, M 0)
            frags = fragment6(q, l2_len + mtu)
        if frng.random() < 0.2:
            frags.reverse()  # out of order, as a link may deliver them
        out.extend(frags)
    return out


# ---- --gtpu ------------------------------------------------------------------------------

GTPU_PORT = 2152


def gtpu_header(msg_type, teid, body_len, seq=None):
    """A GTPv1-U header: version 1, PT 1, the S flag and a sequence number when seq is given."""
    if seq is None:
        return struct.pack("!BBHI", 0x30, msg_type, body_len, teid)
    return struct.pack("!BBHIHBB", 0x32, msg_type, body_len + 4, teid, seq & 0xFFFF, 0, 0)


def make_gtpu_flow(grng, index, qinq):
    """--gtpu: one user-plane flow between an eNodeB and an SGW (outer IPv4, UDP 2152 both
    ways, one TEID per direction, some with sequence numbers), carrying an inner IPv4 or IPv6
    TCP connection or UDP exchange; sometimes preceded by a GTP-U echo request and response,
    which are not G-PDUs (plain UDP)."""
    enb_mac = "02:00:00:%02x:%02x:%02x" % (2, index >> 8 & 0xFF, index & 0xFF)
    sgw_mac = "02:00:00:fe:00:01"
    enb, sgw = "10.200.%d.%d" % (index >> 8 & 0xFF, index & 0xFF or 1), "10.201.0.%d" % grng.randint(1, 8)
    v6 = grng.random() < 0.35
    if v6:
        ue, server = "2001:db8:45::%x" % (index + 1), "2001:db8:cc::%x" % grng.randint(1, 50)
    else:
        ue, server = "10.45.%d.%d" % (index >> 8 & 0xFF, index & 0xFF or 1), "203.0.113.%d" % grng.randint(1, 50)
    kind = grng.choices(["tcp", "udp"], weights=[6, 4])[0]
    teid = {True: grng.getrandbits(32) | 1, False: grng.getrandbits(32) | 1}
    seq = {True: grng.randint(0, 65535), False: grng.randint(0, 65535)} if grng.random() < 0.3 else None
    tag = grng.random()
    vlan = 200 + index % 10
    outer_tos = grng.choice([0, 46 << 2])
    inner_tos = grng.choice([0, 0, 10, 18, 34, 46]) << 2 | grng.choice([0, 0, 1, 2])
    sport, dport = grng.randint(1024, 65535), grng.choice([80, 443, 8080, 5060, 3478, 1935])

    def l2(up):
        eth = Ether(src=enb_mac if up else sgw_mac, dst=sgw_mac if up else enb_mac)
        if tag < 0.15 and qinq:
            return eth / Dot1AD(vlan=1001) / Dot1Q(vlan=vlan)
        if tag < 0.40:
            return eth / Dot1Q(vlan=vlan)
        return eth

    def outer(up, msg_type, body, teid_value, seq_value):
        a, b = (enb, sgw) if up else (sgw, enb)
        return (l2(up) / IP(src=a, dst=b, id=grng.randint(0, 65535), tos=outer_tos)
                / UDP(sport=GTPU_PORT, dport=GTPU_PORT)
                / Raw(gtpu_header(msg_type, teid_value, len(body), seq_value) + body))

    def gpdu(up, inner):
        s = None
        if seq is not None:
            s = seq[up]
            seq[up] += 1
        a, b = (ue, server) if up else (server, ue)
        l3 = IPv6(src=a, dst=b, tc=inner_tos) if v6 else IP(src=a, dst=b, tos=inner_tos, id=grng.randint(0, 65535))
        return outer(up, 255, raw(l3 / inner), teid[up], s)

    def payload(size):
        return Raw(bytes(grng.getrandbits(8) for _ in range(size)))

    pkts = []
    if grng.random() < 0.2:
        echo_seq = grng.randint(0, 65535)
        pkts.append(outer(True, 1, b"", 0, echo_seq))                  # Echo Request
        pkts.append(outer(False, 2, b"\x0e\x00", 0, echo_seq))         # Echo Response, Recovery IE
    if kind == "tcp":
        cseq, sseq = grng.randint(0, 2**32 - 1), grng.randint(0, 2**32 - 1)
        pkts.append(gpdu(True, TCP(sport=sport, dport=dport, flags="S", seq=cseq)))
        pkts.append(gpdu(False, TCP(sport=dport, dport=sport, flags="SA", seq=sseq, ack=cseq + 1)))
        cseq, sseq = cseq + 1, sseq + 1
        for _ in range(grng.randint(1, 10)):
            size = grng.randint(1, 1300)
            if grng.random() < 0.4:
                pkts.append(gpdu(True, TCP(sport=sport, dport=dport, flags="PA", seq=cseq, ack=sseq) / payload(size)))
                cseq = (cseq + size) % 2**32
            else:
                pkts.append(gpdu(False, TCP(sport=dport, dport=sport, flags="PA", seq=sseq, ack=cseq) / payload(size)))
                sseq = (sseq + size) % 2**32
        if grng.random() < 0.15:
            pkts.append(gpdu(True, TCP(sport=sport, dport=dport, flags="R", seq=cseq)))
        else:
            pkts.append(gpdu(True, TCP(sport=sport, dport=dport, flags="FA", seq=cseq, ack=sseq)))
    else:
        for _ in range(grng.randint(1, 10)):
            up = grng.random() < 0.6
            a, b = (sport, dport) if up else (dport, sport)
            pkts.append(gpdu(up, UDP(sport=a, dport=b) / payload(grng.randint(0, 1300))))
    return pkts


# ---- --malformed -------------------------------------------------------------------------

MALFORMED_REASONS = [
    "eth_truncated", "vlan_truncated", "ipv4_truncated", "ipv4_bad_version", "ipv4_bad_ihl",
    "ipv4_bad_length", "ipv6_truncated", "ipv6_bad_version", "ipv6_ext_truncated",
    "ipv6_ext_chain_too_long", "tcp_truncated", "tcp_bad_offset", "udp_truncated",
    "udp_bad_length", "sctp_truncated", "icmp_truncated",
]
GTPU_MALFORMED_REASONS = ["gtpu_truncated", "gtpu_bad_header"]

ETH_IPV4, ETH_IPV6, ETH_ARP = 0x0800, 0x86DD, 0x0806


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class Malformer:
    """Builds frames that each have exactly one problem, the named drop reason: everything
    before and around it (Ethernet, tags, IP lengths, checksums) is consistent, so no other
    check can fire first, and nothing is padded (a frame ends where its last header ends)."""

    def __init__(self, mrng, qinq, cycle):
        self.rng, self.qinq, self.cycle, self.n = mrng, qinq, cycle, 0

    def eth(self, ether_type):
        """The 14-byte Ethernet header."""
        r = self.rng
        return (bytes.fromhex("02000000ff01") + bytes([2, 0, 0, 0xBA, r.randint(0, 255), r.randint(0, 255)])
                + struct.pack("!H", ether_type))

    def l2(self, ether_type):
        """Ethernet header and complete tags (none, 802.1Q, or 802.1ad + 802.1Q)."""
        r = self.rng
        tag = r.random()
        if tag < 0.2 and self.qinq:
            return self.eth(0x88A8) + struct.pack("!HHHH", 1002, 0x8100, r.randint(100, 109), ether_type)
        if tag < 0.5:
            return self.eth(0x8100) + struct.pack("!HH", r.randint(100, 109), ether_type)
        return self.eth(ether_type)

    def v4(self, proto, l4, ihl=5, total=None, version=4, frag=0):
        """An IPv4 header (options NOP-filled for ihl > 5) followed by l4."""
        r = self.rng
        opts = b"\x01" * (max(ihl, 5) * 4 - 20)
        total = 20 + len(opts) + len(l4) if total is None else total
        hdr = struct.pack("!BBHHHBBH4s4s", version << 4 | ihl, 0, total, r.randint(0, 65535), frag,
                          64, proto, 0, bytes([198, 51, 100, r.randint(1, 254)]),
                          bytes([192, 0, 2, r.randint(1, 50)])) + opts
        return hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:] + l4

    def v6(self, nh, rest, plen=None, version=6):
        r = self.rng
        plen = len(rest) if plen is None else plen
        src = bytes.fromhex("20010db80bad0000000000000000") + struct.pack("!H", r.randint(1, 65535))
        dst = bytes.fromhex("20010db800ff0000000000000000") + struct.pack("!H", r.randint(1, 50))
        return struct.pack("!IHBB", version << 28, plen, nh, 64) + src + dst + rest

    def udp(self, body=None, dport=None, length=None):
        r = self.rng
        body = bytes(r.getrandbits(8) for _ in range(r.randint(0, 64))) if body is None else body
        dport = r.choice([53, 123, 5060, 3478]) if dport is None else dport
        length = 8 + len(body) if length is None else length
        return struct.pack("!HHHH", r.randint(1024, 65535), dport, length, 0) + body

    def tcp(self, doff=5, flags=0x18, body=b""):
        r = self.rng
        opts = b"\x01" * (max(doff, 5) * 4 - 20)
        return struct.pack("!HHIIBBHHH", r.randint(1024, 65535), r.choice([80, 443, 8080]),
                           r.getrandbits(32), r.getrandbits(32), doff << 4, flags, 65535, 0, 0) + opts + body

    def gpdu(self, flags=0x30, inner=None, seq=None):
        """G-PDU bytes (GTP-U header and an inner IPv4 UDP packet)."""
        inner = self.v4(17, self.udp()) if inner is None else inner
        opt = b"" if seq is None else struct.pack("!HBB", seq, 0, 0)
        return struct.pack("!BBHI", flags, 255, len(opt) + len(inner), self.rng.getrandbits(32) | 1) + opt + inner

    def frame(self, reason):
        r, v = self.rng, self.n // self.cycle  # v: which time this reason comes round
        self.n += 1
        v4, v6, udp, tcp = self.v4, self.v6, self.udp, self.tcp
        if reason == "eth_truncated":
            return (self.l2(ETH_IPV4) + v4(17, udp()))[:r.randint(1, 13)]
        if reason == "vlan_truncated":
            if v % 2 and self.qinq:  # S-tag complete, C-tag cut
                return self.eth(0x88A8) + struct.pack("!HH", 1002, 0x8100) + b"\x00\x64"[:r.randint(0, 2)]
            return self.eth(0x8100) + struct.pack("!HH", r.randint(100, 109), ETH_IPV4)[:r.randint(0, 3)]
        if reason == "ipv4_truncated":
            if v % 3 == 0:  # cut inside the payload: fewer bytes than the total length
                pkt = v4(17, udp(bytes(40)))
                return self.l2(ETH_IPV4) + pkt[:r.randint(21, len(pkt) - 1)]
            if v % 3 == 1:  # cut inside the 20-byte header
                return self.l2(ETH_IPV4) + v4(6, tcp())[:r.randint(1, 19)]
            return self.l2(ETH_IPV4) + v4(17, udp(), ihl=7)[:r.randint(20, 27)]  # inside the options
        if reason == "ipv4_bad_version":
            return self.l2(ETH_IPV4) + v4(17, udp(), version=[5, 6, 0, 15][v % 4])
        if reason == "ipv4_bad_ihl":
            pkt = v4(17, udp())
            return self.l2(ETH_IPV4) + bytes([0x40 | [4, 0, 3, 1, 2][v % 5]]) + pkt[1:]
        if reason == "ipv4_bad_length":
            if v % 2:  # options present: total length 20..23 is below 24
                return self.l2(ETH_IPV4) + v4(17, udp(), ihl=6, total=r.randint(20, 23))
            return self.l2(ETH_IPV4) + v4(17, udp(), total=r.choice([0, 8, 19]))
        if reason == "ipv6_truncated":
            if v % 2:  # cut inside the 40-byte header
                return self.l2(ETH_IPV6) + v6(17, udp())[:r.randint(1, 39)]
            pkt = v6(17, udp(bytes(32)))
            return self.l2(ETH_IPV6) + pkt[:r.randint(40, len(pkt) - 1)]
        if reason == "ipv6_bad_version":
            return self.l2(ETH_IPV6) + v6(17, udp(), version=[4, 0, 7, 15][v % 4])
        if reason == "ipv6_ext_truncated":
            # The IPv6 payload length matches the frame; an extension header claims more.
            k = v % 4
            if k == 0:  # Destination Options of 16 bytes, 8 present
                return self.l2(ETH_IPV6) + v6(60, bytes([17, 1, 1, 4]) + bytes(4))
            if k == 1:  # Hop-by-Hop complete, then a Routing header of 24 bytes with 8 present
                return self.l2(ETH_IPV6) + v6(0, bytes([43, 0, 1, 4]) + bytes(4) + bytes([17, 2, 0, 0]) + bytes(4))
            if k == 2:  # Fragment header (8 bytes), 4 present
                return self.l2(ETH_IPV6) + v6(44, bytes([17, 0, 0, 0]))
            return self.l2(ETH_IPV6) + v6(0, bytes([17]))  # Hop-by-Hop, 1 byte present
        if reason == "ipv6_ext_chain_too_long":
            count = [9, 10, 12][v % 3]
            chain = [0] + [60] * (count - 1) if v % 2 == 0 else [60] * count
            rest = b""
            for i, _ in enumerate(chain):
                nh = chain[i + 1] if i + 1 < len(chain) else 17
                rest += bytes([nh, 0, 1, 4, 0, 0, 0, 0])  # 8 bytes: PadN option
            return self.l2(ETH_IPV6) + v6(chain[0], rest + udp())
        if reason == "tcp_truncated":
            if v % 2:  # data offset 8 (32 bytes), 20..31 present
                l4 = tcp(doff=8)[:r.randint(20, 31)]
            else:      # fewer than 20 bytes
                l4 = tcp()[:r.randint(1, 19)]
            return self.ip_frame(v // 2, 6, l4)
        if reason == "tcp_bad_offset":
            return self.ip_frame(v, 6, tcp(doff=[3, 0, 4, 1, 2][v % 5], body=bytes(r.randint(0, 16))))
        if reason == "udp_truncated":
            return self.ip_frame(v, 17, udp(bytes(8))[:r.randint(0, 5)])
        if reason == "udp_bad_length":
            if v % 2:  # beyond the IP payload
                body = bytes(r.randint(0, 40))
                return self.ip_frame(v // 2, 17, udp(body, length=8 + len(body) + r.randint(1, 100)))
            return self.ip_frame(v // 2, 17, udp(length=[4, 0, 7][v // 2 % 3]))
        if reason == "sctp_truncated":
            sctp = struct.pack("!HHI", r.randint(1024, 65535), 38412, r.getrandbits(32))
            return self.ip_frame(v, 132, sctp[:r.randint(1, 11)])
        if reason == "icmp_truncated":
            if v % 2:
                return self.l2(ETH_IPV6) + v6(58, bytes([128, 0, 0, 0])[:r.randint(1, 3)])
            return self.l2(ETH_IPV4) + v4(1, bytes([8, 0, 0, 0, 0, 1, 0, 1])[:r.randint(1, 7)])
        if reason == "gtpu_truncated":
            k = v % 3
            if k == 0:    # cut inside the 8-byte header
                gtp = self.gpdu()[:r.randint(2, 7)]
            elif k == 1:  # S flag: cut inside the 4 optional bytes
                gtp = self.gpdu(0x32, seq=r.randint(0, 65535))[:r.randint(8, 11)]
            else:         # E flag: a PDU Session Container claiming 8 bytes, 0..7 present
                head = struct.pack("!BBHIHBB", 0x34, 255, 64, r.getrandbits(32) | 1, 0, 0, 0x85)
                gtp = head + bytes([2, 0x10, 0x01, 0, 0, 0, 0, 0])[:r.randint(0, 7)]
            return self.l2(ETH_IPV4) + v4(17, udp(gtp, dport=GTPU_PORT))
        if reason == "gtpu_bad_header":
            flags = [0x50, 0x20, 0x70, 0x22][v % 4]  # version 2, PT 0, version 3, PT 0 with S
            return self.l2(ETH_IPV4) + v4(17, udp(self.gpdu(flags), dport=GTPU_PORT))
        raise ValueError(reason)

    def ip_frame(self, v, proto, l4):
        """l4 in IPv4 or IPv6 (alternating), lengths consistent."""
        if v % 2:
            return self.l2(ETH_IPV6) + self.v6(proto, l4)
        return self.l2(ETH_IPV4) + self.v4(proto, l4)

    def arp(self):
        """A well-formed ARP request or reply (not IP: no flow, the default action)."""
        r = self.rng
        host = r.randint(1, 50)
        l2 = self.l2(ETH_ARP)
        if r.random() < 0.5:
            l2 = b"\xff" * 6 + l2[6:]
            body = raw(ARP(op=1, hwsrc="02:00:00:ba:00:%02x" % host, psrc="192.0.2.%d" % (100 + host),
                           pdst="192.0.2.%d" % r.randint(1, 50)))
        else:
            body = raw(ARP(op=2, hwsrc="02:00:00:ff:00:01", psrc="192.0.2.%d" % r.randint(1, 50),
                           hwdst="02:00:00:ba:00:%02x" % host, pdst="192.0.2.%d" % (100 + host)))
        return l2 + body


class Frame(bytes):
    """A frame written as the bytes given (no dissector rebuilds it); takes a .time like a packet."""


def plan_specials(seed, total, malformed, gtpu, qinq):
    """--malformed: {capture index: (kind, reason, frame bytes)} for the malformed frames
    (evenly spread, cycling through the reasons) and a few ARP frames."""
    if malformed <= 0:
        return {}
    mrng = random.Random("%d/malformed" % seed)
    arps = 3 + malformed // 10
    if malformed + arps > total:
        raise SystemExit("gen-traffic: --malformed %d needs --packets of at least %d" % (malformed, malformed + arps))
    reasons = MALFORMED_REASONS + (GTPU_MALFORMED_REASONS if gtpu else [])
    m = Malformer(mrng, qinq, len(reasons))
    # One frame in each of `malformed` equal stretches of the capture, at a random place.
    spots = [(k * total + mrng.randrange(total)) // malformed for k in range(malformed)]
    specials = {}
    for k, spot in enumerate(spots):
        reason = reasons[k % len(reasons)]
        specials[spot] = ("malformed", reason, m.frame(reason))
    free = [i for i in range(total) if i not in specials]
    for spot in mrng.sample(free, arps):
        specials[spot] = ("non_ip", None, m.arp())
    return specials


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="pcap file to write")
    ap.add_argument("--packets", type=int, default=2000, help="number of packets (default 2000)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--jumbo", action="store_true", help="include some frames of up to 8 KB")
    ap.add_argument("--no-qinq", action="store_true",
                    help="no 802.1ad (QinQ) frames: DPDK 22.11's af_packet PMD rewrites their outer "
                         "TPID 0x88a8 to 0x8100")
    ap.add_argument("--fragments", action="store_true",
                    help="send some large UDP datagrams (IPv4 and IPv6) as fragments")
    ap.add_argument("--gtpu", action="store_true",
                    help="include GTP-U flows (G-PDUs to UDP port 2152 carrying IPv4/IPv6 TCP and UDP)")
    ap.add_argument("--malformed", type=int, default=0, metavar="N",
                    help="inject N malformed frames cycling through the drop reasons, and a few ARP frames")
    ap.add_argument("--manifest", metavar="FILE",
                    help="write what was injected (malformed and non-IP indices) as JSON")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    # The extras draw from their own generators: rng sees exactly the draws it always saw.
    frng = random.Random("%d/fragments" % args.seed)
    grng = random.Random("%d/gtpu" % args.seed)
    specials = plan_specials(args.seed, args.packets, args.malformed, args.gtpu, not args.no_qinq)
    # Several flows are open at once, interleaved the way a link carries them.
    open_flows, written, index, gtpu_index = [], 0, 0, 0
    counts = {"fragments": 0, "gtpu": 0}
    writer = PcapWriter(args.out, linktype=1, sync=False)
    t = 1_700_000_000.0
    while written < args.packets:
        if written in specials:
            pkt = Frame(specials[written][2])
        else:
            while len(open_flows) < 8:
                if args.gtpu and grng.random() < 0.2:
                    open_flows.append(make_gtpu_flow(grng, gtpu_index, not args.no_qinq))
                    gtpu_index += 1
                    continue
                flow = make_flow(rng, index, args.jumbo, not args.no_qinq)
                if args.fragments:
                    flow = fragment_some(frng, flow)
                open_flows.append(flow)
                index += 1
            flow = rng.choice(open_flows)
            pkt = flow.pop(0)
            if not flow:
                open_flows.remove(flow)
            if (IP in pkt and (pkt[IP].flags.MF or pkt[IP].frag)) or IPv6ExtHdrFragment in pkt:
                counts["fragments"] += 1
            elif UDP in pkt and pkt[UDP].dport == GTPU_PORT:
                counts["gtpu"] += 1
        pkt.time = t + written * 0.00001
        writer.write(pkt)
        written += 1
    writer.close()
    if not (args.fragments or args.gtpu or args.malformed or args.manifest):
        print("gen-traffic: wrote %d packets in %d flows to %s" % (written, index, args.out), file=sys.stderr)
        return
    malformed = {}
    for kind, reason, _ in specials.values():
        if kind == "malformed":
            malformed[reason] = malformed.get(reason, 0) + 1
    manifest = {
        "packets": written,
        "malformed": malformed,
        "malformed_indices": sorted(i for i, s in specials.items() if s[0] == "malformed"),
        "non_ip_indices": sorted(i for i, s in specials.items() if s[0] == "non_ip"),
    }
    manifest["malformed_reasons"] = [specials[i][1] for i in manifest["malformed_indices"]]
    if args.manifest:
        with open(args.manifest, "w") as f:
            json.dump(manifest, f, indent=1)
            f.write("\n")
    print("gen-traffic: wrote %d packets in %d flows (%d GTP-U) to %s: %d fragments, %d GTP-U "
          "frames, %d malformed, %d non-IP"
          % (written, index + gtpu_index, gtpu_index, args.out, counts["fragments"], counts["gtpu"],
             len(manifest["malformed_indices"]), len(manifest["non_ip_indices"])), file=sys.stderr)


if __name__ == "__main__":
    main()
