#!/usr/bin/python3
"""Sends one UDP flow of fixed-size frames on an interface at a rate that changes in phases
(run it inside a namespace): the offered rate a metered block's series is checked against.

  paced_traffic.py IFACE --src 198.51.100.7 --size 1000 --phase 5:30 --phase 5:100 ...

Each --phase SECONDS:PPS sends PPS frames a second, evenly spaced, for SECONDS. A frame that
is late is sent at once and the schedule restarts from it: never a burst to catch up, which
a meter would mark red. Prints one line per phase: "phase N: SENT frames in S s".
"""
import argparse
import time

from scapy.all import IP, UDP, Ether, Raw, conf


def main():
    p = argparse.ArgumentParser()
    p.add_argument("iface")
    p.add_argument("--src", required=True)
    p.add_argument("--dst", default="203.0.113.1")
    p.add_argument("--size", type=int, default=1000, help="frame bytes (without FCS)")
    p.add_argument("--phase", action="append", required=True, help="SECONDS:PPS")
    a = p.parse_args()
    head = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=a.src, dst=a.dst) / UDP(
        sport=40000, dport=9)
    frame = bytes(head / Raw(b"x" * (a.size - len(head))))
    assert len(frame) == a.size
    sock = conf.L2socket(iface=a.iface)
    for n, spec in enumerate(a.phase, 1):
        seconds, pps = (float(x) for x in spec.split(":"))
        gap = 1.0 / pps
        start = time.monotonic()
        end = start + seconds
        due = start
        sent = 0
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if now < due:
                time.sleep(min(due - now, end - now))
                continue
            sock.send(frame)
            sent += 1
            # Late: go on from now rather than send the missed frames back to back.
            due = max(due + gap, now + gap / 2)
        print("phase %d: %d frames in %.2f s" % (n, sent, time.monotonic() - start), flush=True)
    sock.close()


if __name__ == "__main__":
    main()
