#!/usr/bin/python3
"""Small pcap helpers for the scripts, without scapy's dissectors (fast and exact).

  pcap-tool.py count FILE                      number of packets
  pcap-tool.py same A B                        exit 0 when both hold the same packet bytes in order
  pcap-tool.py summary REPORT IN.pcap OUT.pcap [MANIFEST [RECORDS]]
                                               the demo's human summary of a segx run
"""
import json
import struct
import sys


def packets(path):
    data = open(path, "rb").read()
    if len(data) < 24:
        raise SystemExit("%s: not a pcap file" % path)
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        order = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        order = ">"
    else:
        raise SystemExit("%s: not a pcap file" % path)
    out, off = [], 24
    while off + 16 <= len(data):
        caplen = struct.unpack(order + "I", data[off + 8:off + 12])[0]
        out.append(data[off + 16:off + 16 + caplen])
        off += 16 + caplen
    return out


def summary(report_path, in_path, out_path, manifest_path=None, records_path=None):
    r = json.load(open(report_path))
    print("\ndemo summary")
    for p in r["ports"]:
        dropped = p["rx_missed"] + p["rx_errors"] + p["rx_nombuf"] + p["tx_errors"] + p["tx_dropped"]
        print("  port %-5s (%s): %6d packets in, %6d packets out, %d dropped by the device"
              % (p["name"], p["device"], p["rx_packets"], p["tx_packets"], dropped))
    for p in r.get("profiles", []):
        closed = ", ".join("%s %d" % kv for kv in sorted(p["closed_by"].items()))
        print("  profile %-6s %6d packets in %5d segments (closed by %s)"
              % (p["name"], p["packets"], p["segments"], closed or "nothing"))
    dropped = sum(r["drops"].values())
    print("  segx: %d received, %d transmitted, %d dropped, %d mbufs in use at exit"
          % (r["received"], r["transmitted"], dropped, r["mempool"]["in_use"]))
    for reason, n in sorted(r["drops"].items()):
        print("    dropped %-24s %d" % (reason, n))
    a, b = packets(in_path), packets(out_path)
    ok = r["mempool"]["in_use"] == 0
    if manifest_path:
        m = json.load(open(manifest_path))
        malformed = set(m["malformed_indices"])
        expected = [p for i, p in enumerate(a) if i not in malformed]
        counted = all(r["drops"].get(k, 0) == v for k, v in m["malformed"].items())
        print("  malformed frames injected: %d; counted under their reasons: %s"
              % (len(malformed), "yes" if counted else "NO"))
        same = b == expected
        print("  %s: %d packets; %s: %d packets = every well-formed packet, same bytes, same order: %s"
              % (in_path, len(a), out_path, len(b), "yes" if same else "NO"))
        ok = ok and counted and same
    else:
        same = a == b
        print("  %s: %d packets; %s: %d packets; identical bytes in the same order: %s"
              % (in_path, len(a), out_path, len(b), "yes" if same else "NO"))
        ok = ok and same
    if records_path:
        lines = open(records_path).read().splitlines()
        print("  %s: %d segment records, e.g.\n    %s" % (records_path, len(lines), lines[0] if lines else "-"))
    return 0 if ok else 1


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "count":
        print(len(packets(sys.argv[2])))
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "same":
        return 0 if packets(sys.argv[2]) == packets(sys.argv[3]) else 1
    if 5 <= len(sys.argv) <= 7 and sys.argv[1] == "summary":
        return summary(*sys.argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
