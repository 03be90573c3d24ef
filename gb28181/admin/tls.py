"""Optional HTTPS for the admin API (``[admin] tls_cert`` / ``tls_key``, PEM files)."""

from __future__ import annotations

import ipaddress
import ssl


def admin_tls(cert: str, key: str) -> ssl.SSLContext | None:
    """The server TLS context (TLS 1.2 or later), or None for plain HTTP when no certificate is configured.
    Raises OSError / ssl.SSLError for unreadable or mismatched files."""
    if not cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def is_loopback(host: str) -> bool:
    """Whether a listen host is a loopback address (the admin API's default, 127.0.0.1)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
