"""[[upstream]] tables (ARCHITECTURE.md keys): defaults, validation with messages an operator can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from gb28181.config import ConfigError, UpstreamConfig, load

UP = "44000000002000000001"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_keys(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, f'[[upstream]]\nid = "{UP}"\nhost = "127.0.0.1"\n'))
    (u,) = cfg.upstream
    assert (u.sip_domain, u.port, u.transport, u.username, u.register_expires) == ("4400000000", 5060, "udp", "", 3600)
    assert (u.keepalive_interval, u.keepalive_max_missed, u.retry_interval) == (60, 3, 60.0)  # GB/T 28181 §9.1, §9.6
    assert (u.charset, u.catalog_batch, u.media, u.share) == ("GB2312", 4, "relay", ())
    full = f"""
[[upstream]]
id = "{UP}"
domain = "4400000001"
host = "127.0.0.1"
port = 15060
transport = "TCP"
username = "user"
password = "pw"
register_expires = 600
keepalive_interval = 20
charset = "utf8"
catalog_batch = 2
media = "direct"
share = ["34020000001320000001", "3402"]
retry_interval = 0.5
[[upstream]]
id = "45000000002000000001"
host = "127.0.0.2"
share = "all"
"""
    a, b = load(write(tmp_path, full)).upstream
    assert (a.sip_domain, a.port, a.transport, a.username, a.password) == ("4400000001", 15060, "tcp", "user", "pw")
    assert (a.register_expires, a.keepalive_interval, a.charset, a.catalog_batch) == (600, 20, "UTF-8", 2)
    assert (a.media, a.share, a.retry_interval) == ("direct", ("34020000001320000001", "3402"), 0.5)
    assert b.share == ("all",)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('host = "h"\n', "id is required"),
        (f'id = "{UP}"\n', "host is required"),
        ('id = "4400"\nhost = "h"\n', "id must be 20 digits"),
        (f'id = "{UP}"\nhost = "h"\nport = 0\n', "port"),
        (f'id = "{UP}"\nhost = "h"\nport = "5060"\n', "port must be an integer"),
        (f'id = "{UP}"\nhost = "h"\ntransport = "sctp"\n', "transport"),
        (f'id = "{UP}"\nhost = "h"\nregister_expires = 5\n', "register_expires"),
        (f'id = "{UP}"\nhost = "h"\ncharset = "latin1"\n', "charset"),
        (f'id = "{UP}"\nhost = "h"\ncatalog_batch = 0\n', "catalog_batch"),
        (f'id = "{UP}"\nhost = "h"\nmedia = "mixed"\n', "media"),
        (f'id = "{UP}"\nhost = "h"\nshare = ["all", "3402"]\n', "either"),
        (f'id = "{UP}"\nhost = "h"\nshare = ["abc"]\n', "not a 20-digit ID"),
        (f'id = "{UP}"\nhost = "h"\nshare = 5\n', "share must be"),
        (f'id = "{UP}"\nhost = "h"\nretry_interval = 10.0\nretry_max = 5.0\n', "retry_interval"),
        (f'id = "{UP}"\nhost = "h"\nsecret = "x"\n', "unknown key 'secret'"),
        ('id = "34020000002000000001"\nhost = "h"\n', "our own"),
    ],
)
def test_bad_upstream_says_what_is_wrong(tmp_path: Path, body: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load(write(tmp_path, "[[upstream]]\n" + body))


def test_ids_must_be_distinct(tmp_path: Path) -> None:
    text = f'[[upstream]]\nid = "{UP}"\nhost = "a"\n[[upstream]]\nid = "{UP}"\nhost = "b"\n'
    with pytest.raises(ConfigError, match="distinct"):
        load(write(tmp_path, text))


def test_checked_normalises() -> None:
    u = UpstreamConfig(id=UP, host="h", transport="UDP", charset="gb18030").checked()
    assert (u.transport, u.charset) == ("udp", "GB18030")
