"""Parser and transport limits. All are settings; defaults suit a GB/T 28181 platform."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    # Largest UDP datagram we accept: 65535 - 8 (UDP) - 20 (IPv4), as gosip and RFC 3261 §18.1.1 allow.
    max_datagram: int = 65507
    # Largest header section (start line + headers), in bytes.
    max_head: int = 16384
    max_headers: int = 128
    max_line: int = 8192
    # Largest body. Catalog responses from big NVRs over TCP can reach a few hundred kB.
    max_body: int = 1 << 20
    # Largest amount of data a TCP connection may hold while waiting for the rest of a message (checked after
    # each read is framed; keep it above max_head + max_body or large messages cannot complete).
    max_tcp_buffer: int = 2 << 20


DEFAULT_LIMITS = Limits()
