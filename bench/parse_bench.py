#!/usr/bin/env python3
"""Parse / serialize micro-benchmark of the sans-IO SIP message layer (messages per second, one core).

Four typical GB/T 28181 messages: a REGISTER with digest Authorization, a Keepalive MESSAGE with a
MANSCDP body, a 200 OK to a REGISTER, and an INVITE with a GB SDP offer. For each, four rates:

  parse          sip.parse_message(bytes)
  parse+touch    parse, then read top_via, from_, to, cseq, call_id (what the transaction layer needs)
  parse+ser      parse, then sip.serialize() the result back to bytes
  serialize      serialize an already parsed message

Each rate is measured with time.perf_counter over a fixed count, repeated (default 5x); best and median
are reported. Target: REGISTER parse+serialize >= 50,000/s on one core (PASS/FAIL printed).

usage: python bench/parse_bench.py [--count N] [--repeat R] [--cpu CORE] [--json] [--record]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import _env  # noqa: E402

from sip import parse_message, serialize  # noqa: E402

TARGET_REGISTER_PARSE_SERIALIZE = 50_000


def _msg(head: str, body: bytes = b"") -> bytes:
    lines = [line.strip() for line in head.strip().splitlines()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


REGISTER = _msg(
    """
    REGISTER sip:34020000002000000001@3402000000 SIP/2.0
    Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1371463273
    From: <sip:34020000001320000001@3402000000>;tag=2043466181
    To: <sip:34020000001320000001@3402000000>
    Call-ID: 1011047669
    CSeq: 2 REGISTER
    Contact: <sip:34020000001320000001@192.168.1.64:5060>
    Authorization: Digest username="34020000001320000001", realm="3402000000", \
nonce="6f1d2a3b4c5d6e7f.1732521600.9a8b7c6d5e4f3a2b1c0d", uri="sip:34020000002000000001@3402000000", \
response="4b1c3bb43a8a6f0a3e9f1f6ac1dd2a3e", algorithm=MD5, cnonce="0a4f113b", qop=auth, nc=00000001
    Max-Forwards: 70
    User-Agent: IP Camera
    Expires: 3600
    """
)

KEEPALIVE_BODY = (
    b'<?xml version="1.0" encoding="GB2312"?>\r\n'
    b"<Notify>\r\n"
    b"<CmdType>Keepalive</CmdType>\r\n"
    b"<SN>43</SN>\r\n"
    b"<DeviceID>34020000001320000001</DeviceID>\r\n"
    b"<Status>OK</Status>\r\n"
    b"</Notify>\r\n"
)

KEEPALIVE = _msg(
    """
    MESSAGE sip:34020000002000000001@3402000000 SIP/2.0
    Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1990871215
    From: <sip:34020000001320000001@3402000000>;tag=1471349830
    To: <sip:34020000002000000001@3402000000>
    Call-ID: 1258379813
    CSeq: 20 MESSAGE
    Content-Type: Application/MANSCDP+xml
    Max-Forwards: 70
    User-Agent: IP Camera
    """,
    KEEPALIVE_BODY,
)

OK_200 = _msg(
    """
    SIP/2.0 200 OK
    Via: SIP/2.0/UDP 192.168.1.64:5060;rport=5060;branch=z9hG4bK1371463273;received=192.168.1.64
    From: <sip:34020000001320000001@3402000000>;tag=2043466181
    To: <sip:34020000001320000001@3402000000>;tag=5a1c9e27d3f0
    Call-ID: 1011047669
    CSeq: 2 REGISTER
    Contact: <sip:34020000001320000001@192.168.1.64:5060>
    Expires: 3600
    Date: 2026-11-25T16:00:00.000
    User-Agent: gb28181
    """
)

SDP = (
    b"v=0\r\n"
    b"o=34020000002000000001 0 0 IN IP4 192.168.1.10\r\n"
    b"s=Play\r\n"
    b"u=34020000001320000001:0\r\n"
    b"c=IN IP4 192.168.1.10\r\n"
    b"t=0 0\r\n"
    b"m=video 30000 RTP/AVP 96 98 97\r\n"
    b"a=recvonly\r\n"
    b"a=rtpmap:96 PS/90000\r\n"
    b"a=rtpmap:98 H264/90000\r\n"
    b"a=rtpmap:97 MPEG4/90000\r\n"
    b"y=0100000001\r\n"
    b"f=v/2/4///a///\r\n"
)

INVITE = _msg(
    """
    INVITE sip:34020000001320000001@3402000000 SIP/2.0
    Via: SIP/2.0/UDP 192.168.1.10:5060;rport;branch=z9hG4bK3f2a9c1d7e8b4a60
    From: <sip:34020000002000000001@3402000000>;tag=9c41b0e2a7d5
    To: <sip:34020000001320000001@3402000000>
    Call-ID: 4a7f0c2e9b1d3f5a6c8e0b2d@192.168.1.10
    CSeq: 1 INVITE
    Contact: <sip:34020000002000000001@192.168.1.10:5060>
    Subject: 34020000001320000001:0100000001,34020000002000000001:0
    Content-Type: APPLICATION/SDP
    Max-Forwards: 70
    User-Agent: gb28181
    """,
    SDP,
)

MESSAGES: dict[str, bytes] = {
    "REGISTER+auth": REGISTER,
    "MESSAGE keepalive": KEEPALIVE,
    "200 OK": OK_200,
    "INVITE+SDP": INVITE,
}


def _parse(data: bytes, n: int) -> None:
    p = parse_message
    for _ in range(n):
        p(data)


def _parse_touch(data: bytes, n: int) -> None:
    p = parse_message
    for _ in range(n):
        m = p(data)
        m.top_via  # noqa: B018
        m.from_  # noqa: B018
        m.to  # noqa: B018
        m.cseq  # noqa: B018
        m.call_id  # noqa: B018


def _parse_serialize(data: bytes, n: int) -> None:
    p = parse_message
    s = serialize
    for _ in range(n):
        s(p(data))


def _serialize(data: bytes, n: int) -> None:
    msg = parse_message(data)
    s = serialize
    for _ in range(n):
        s(msg)


MODES: dict[str, Callable[[bytes, int], None]] = {
    "parse": _parse,
    "parse+touch": _parse_touch,
    "parse+ser": _parse_serialize,
    "serialize": _serialize,
}


def measure(fn: Callable[[bytes, int], None], data: bytes, count: int, repeat: int) -> list[float]:
    fn(data, max(100, count // 20))  # warm-up: caches, allocator
    rates = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(data, count)
        rates.append(count / (time.perf_counter() - t0))
    return rates


def check_messages() -> None:
    """Fail loudly if a message does not round-trip: a benchmark of a parse error is worthless."""
    for name, data in MESSAGES.items():
        msg = parse_message(data)
        again = parse_message(serialize(msg))
        assert list(again.headers) == list(msg.headers), name
        assert again.body == msg.body, name
        msg.top_via, msg.from_, msg.to, msg.cseq, msg.call_id  # noqa: B018


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=20_000, help="messages per timed run (default 20000)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per figure (default 5)")
    ap.add_argument("--cpu", type=int, default=None, help="pin to this core (sched_setaffinity)")
    ap.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    ap.add_argument("--record", action="store_true", help="append a dated block to bench/RESULTS.md")
    a = ap.parse_args()
    if a.cpu is not None:
        os.sched_setaffinity(0, {a.cpu})
    info = _env.machine()
    check_messages()
    gc.collect()
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, data in MESSAGES.items():
        results[name] = {}
        for mode, fn in MODES.items():
            rates = measure(fn, data, a.count, a.repeat)
            results[name][mode] = {"best": max(rates), "median": statistics.median(rates), "bytes": len(data)}

    lines = [
        f"Messages/s, single process, one thread{f', pinned to CPU {a.cpu}' if a.cpu is not None else ''}; "
        f"{a.count:,} messages per timed run, best / median of {a.repeat} runs.",
        "",
        "| message | bytes | " + " | ".join(MODES) + " |",
        "|---|---:|" + "---:|" * len(MODES),
    ]
    for name, by_mode in results.items():
        cells = [f"{r['best']:,.0f} / {r['median']:,.0f}" for r in by_mode.values()]
        lines.append(f"| {name} | {len(MESSAGES[name])} | " + " | ".join(cells) + " |")
    reg = results["REGISTER+auth"]["parse+ser"]
    ok = reg["best"] >= TARGET_REGISTER_PARSE_SERIALIZE
    verdict = (
        f"REGISTER parse+serialize: best {reg['best']:,.0f}/s, median {reg['median']:,.0f}/s; "
        f"target >= {TARGET_REGISTER_PARSE_SERIALIZE:,}/s on one core (judged on the best run): "
        f"{'PASS' if ok else 'FAIL'}"
    )
    lines += ["", verdict]
    print(f"# {_env.machine_line(info)}")
    print("\n".join(lines))
    if a.json:
        print(json.dumps({"machine": info, "count": a.count, "repeat": a.repeat, "results": results, "pass": ok}))
    if a.record:
        _env.append_results("parse_bench (sip message layer)", "\n".join(lines), info)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
