"""`gb28181 serve` with the admin API on HTTPS (a self-signed certificate made in the test), over real sockets:
the CLI trusts it through GB28181_CACERT; a brute-force run from a raw UDP device ends in a lockout that
`gb28181 lockouts` shows, and `gb28181 audit` lists operator actions."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from pathlib import Path

import pytest

from sip.auth import DigestClient
from tests.e2e.conftest import PYTHON, REPO, run_tool
from tests.e2e.serve_helpers import Server

DEVICE = "34020000001320000077"
URI = "sip:34020000002000000001@3402000000"


def self_signed(tmp: Path) -> tuple[Path, Path]:
    x509 = pytest.importorskip("cryptography.x509")  # in the test extras (setup.cfg)
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp / "admin.pem", tmp / "admin.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class TlsServer(Server):
    cert: Path | None = None
    key: Path | None = None

    def write_config(self) -> Path:
        path = super().write_config()
        text = path.read_text().replace("[admin]\n", f'[admin]\ntls_cert = "{self.cert}"\ntls_key = "{self.key}"\n', 1)
        path.write_text(text + "\n[guard]\nmax_failures = 3\nlockout_base = 600\n")
        return path

    @property
    def admin(self) -> str:
        return f"https://127.0.0.1:{self.admin_port}"


async def cli(server: Server, *args: str, cacert: Path | None) -> tuple[int, str, str]:
    env_before = os.environ.get("GB28181_CACERT")
    if cacert is not None:
        os.environ["GB28181_CACERT"] = str(cacert)
    else:
        os.environ.pop("GB28181_CACERT", None)
    try:
        return await run_tool(PYTHON, "-m", "cli", *args, "--admin", server.admin, "--db", str(server.db), "--json",
                              timeout=30, cwd=REPO)  # fmt: skip
    finally:
        if env_before is None:
            os.environ.pop("GB28181_CACERT", None)
        else:
            os.environ["GB28181_CACERT"] = env_before


def register(sock: socket.socket, port: int, password: str | None, n: int) -> str:
    """One REGISTER (answering the challenge when ``password`` is given); returns the final status line."""
    local = sock.getsockname()[1]

    def send(cseq: int, extra: str) -> str:
        msg = (
            f"REGISTER {URI} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{local};rport;branch=z9hG4bK{n}x{cseq}\r\n"
            f"From: <sip:{DEVICE}@3402000000>;tag=f{n}\r\nTo: <sip:{DEVICE}@3402000000>\r\nCall-ID: bf{n}@h\r\n"
            f"CSeq: {cseq} REGISTER\r\nContact: <sip:{DEVICE}@127.0.0.1:{local}>\r\nExpires: 3600\r\n{extra}"
            "Content-Length: 0\r\n\r\n"
        )
        sock.sendto(msg.encode(), ("127.0.0.1", port))
        return sock.recv(65536).decode()

    answer = send(1, "")
    assert answer.startswith("SIP/2.0 401"), answer[:60]
    challenge = next(line.split(":", 1)[1].strip() for line in answer.split("\r\n")
                     if line.lower().startswith("www-authenticate:"))  # fmt: skip
    auth = DigestClient(DEVICE, password or "").authorization(challenge, "REGISTER", URI)
    return send(2, f"Authorization: {auth}\r\n").split("\r\n", 1)[0]


async def test_https_admin_lockout_and_audit(tmp_path: Path) -> None:
    server = TlsServer(tmp_path)
    server.cert, server.key = self_signed(tmp_path)
    await server.start()
    try:
        rc, out, err = await cli(server, "stats", cacert=server.cert)
        assert rc == 0, err
        rc, _, err = await cli(server, "stats", cacert=None)  # an untrusted self-signed certificate
        assert rc != 0 and "certificate" in err.lower()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        try:
            statuses = [register(sock, server.sip_port, "wrong", i) for i in range(3)]
            assert statuses == ["SIP/2.0 403 Forbidden"] * 3
            right = register(sock, server.sip_port, server.password, 9)
            assert right == "SIP/2.0 403 Forbidden"  # locked: the right password too, same answer
        finally:
            sock.close()
        rc, out, err = await cli(server, "lockouts", cacert=server.cert)
        assert rc == 0, err
        (row,) = json.loads(out)
        assert row["device_id"] == DEVICE and row["source"] == "127.0.0.1" and row["seconds_left"] > 500
        rc, out, err = await cli(server, "device", "set", DEVICE, "--name", "gate", cacert=server.cert)
        rc, out, err = await cli(server, "audit", "--since", "-1h", cacert=server.cert)
        assert rc == 0, err
        rows = json.loads(out)
        assert rows and rows[-1]["who"] == "admin" and rows[-1]["action"].startswith("PATCH /api/devices/")
        assert "locked out for 600 s" in server.log()
    finally:
        await server.stop()
