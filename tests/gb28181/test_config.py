"""Platform configuration (gb28181/config.py): defaults, TOML sections, validation messages, flag overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from gb28181.config import AdminToken, Config, ConfigError, ListenAddress, load, override, validate

FULL = """
[platform]
timezone = "UTC"

[sip]
id = "44010000002000000009"
domain = "4401000000"
realm = "gb.example"
listen = ["udp://192.0.2.1:15060", "tcp://[::1]:15061"]
password = "s3cret"
strict_ids = true
min_expires = 120
max_expires = 7200
default_expires = 600
strict_address = true
allow_unknown = false
advertise = "203.0.113.7"
nonce_ttl = 60
qop = false
t1 = 0.25

[registry]
database = "/var/lib/gb/registry.db"

[keepalive]
interval = 30
max_missed = 2

[media]
backend = "zlmediakit"
rtp_ports = "30000-30100"
zlm_url = "http://127.0.0.1:80"
zlm_secret = "x"
zlm_hook_secret = "0123456789abcdef"
advertise = "203.0.113.8"

[[upstream]]
id = "44000000002000000001"
domain = "4400000000"
host = "198.51.100.1"
port = 5060
transport = "udp"
password = "up"
share = "all"

[admin]
listen = "0.0.0.0:18081"
token = "admintoken"

[[admin.tokens]]
name = "wall"
token = "viewtoken"
role = "viewer"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gb28181.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text))
    return str(info.value)


# ------------------------------------------------------------------------------------------------ defaults


def test_defaults_match_the_interface_contract() -> None:
    cfg = load(None)
    assert cfg.sip.id == "34020000002000000001"
    assert cfg.domain == "3402000000"  # derived from the ID
    assert cfg.realm == "3402000000"  # default: the domain
    assert [str(a) for a in cfg.sip.listen] == ["udp://0.0.0.0:5060", "tcp://0.0.0.0:5060"]
    assert cfg.registry.database == "./gb28181.db"
    assert cfg.admin.listen == "127.0.0.1:18080"
    assert cfg.platform.timezone == "Asia/Shanghai"
    s = cfg.sip
    assert (s.min_expires, s.max_expires, s.default_expires, s.nonce_ttl) == (60, 86400, 3600, 300)
    assert (s.qop, s.allow_unknown, s.strict_ids, s.strict_address) == (True, True, False, False)
    assert (cfg.keepalive.interval, cfg.keepalive.max_missed) == (60, 3)
    assert cfg == validate(Config())


def test_an_empty_file_is_the_defaults(tmp_path: Path) -> None:
    assert load(write(tmp_path, "")) == load(None)


def test_domain_follows_the_id_unless_set(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, '[sip]\nid = "44010000002000000001"\n'))
    assert (cfg.domain, cfg.realm) == ("4401000000", "4401000000")
    cfg = load(write(tmp_path, '[sip]\nid = "44010000002000000001"\ndomain = "4401"\n'))
    assert (cfg.domain, cfg.realm) == ("4401", "4401")


# ------------------------------------------------------------------------------------------------ full file


def test_every_section_loads(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, FULL))
    assert cfg.platform.timezone == "UTC"
    s = cfg.sip
    assert (s.id, cfg.domain, cfg.realm) == ("44010000002000000009", "4401000000", "gb.example")
    assert s.listen == (ListenAddress("udp", "192.0.2.1", 15060), ListenAddress("tcp", "::1", 15061))
    assert str(s.listen[1]) == "tcp://[::1]:15061"
    assert (s.password, s.strict_ids, s.strict_address, s.allow_unknown, s.qop) == ("s3cret", True, True, False, False)
    assert (s.min_expires, s.max_expires, s.default_expires, s.nonce_ttl) == (120, 7200, 600, 60)
    assert (s.advertise, s.t1) == ("203.0.113.7", 0.25)
    assert cfg.registry.database == "/var/lib/gb/registry.db"
    assert (cfg.keepalive.interval, cfg.keepalive.max_missed) == (30, 2)
    assert (cfg.media.backend, cfg.media.advertise, cfg.media.rtp_ports) == ("zlmediakit", "203.0.113.8", "30000-30100")
    assert (cfg.media.zlm_url, cfg.media.zlm_secret) == ("http://127.0.0.1:80", "x")
    assert len(cfg.upstream) == 1 and cfg.upstream[0].host == "198.51.100.1"
    assert (cfg.admin.listen, cfg.admin.token) == ("0.0.0.0:18081", "admintoken")


def test_media_defaults_and_truth(tmp_path: Path) -> None:
    cfg = load(None)
    assert (cfg.media.backend, cfg.media.rtp_ports, cfg.media.zlm_timeout, cfg.media.zlm_retries) == (
        "embedded", "30000-30500", 5.0, 2)
    assert not cfg.media  # nothing configured: falsy, as the empty [media] table was
    assert load(write(tmp_path, '[media]\nrtp_ports = "40000-40010"\n')).media


def test_admin_tokens_table_loads(tmp_path: Path) -> None:
    # ARCHITECTURE.md: "[admin] listen, token (admin role), and [[admin.tokens]] name, token, role".
    cfg = load(write(tmp_path, FULL))
    tokens = cfg.admin.tokens
    assert len(tokens) == 1
    assert tokens == (AdminToken("wall", "viewtoken", "viewer"),)


@pytest.mark.parametrize(
    ("tokens", "needle"),
    [
        ('[[admin.tokens]]\nname = "x"\ntoken = "t"\nrole = "root"\n', "role"),
        ('[[admin.tokens]]\nname = "x"\nrole = "viewer"\n', "token"),
        ('[[admin.tokens]]\ntoken = "t"\nrole = "viewer"\n', "name"),
        ('[[admin.tokens]]\nname = "x"\ntoken = "t"\nrole = "viewer"\ncolour = "red"\n', "colour"),
        ('[admin]\ntokens = "t"\n', "tokens"),
    ],
)
def test_bad_admin_tokens(tmp_path: Path, tokens: str, needle: str) -> None:
    assert needle in error(tmp_path, tokens)


def test_listen_may_be_a_single_url(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, '[sip]\nlisten = "tcp://127.0.0.1:0"\n'))
    assert cfg.sip.listen == (ListenAddress("tcp", "127.0.0.1", 0),)


def test_t1_accepts_an_integer(tmp_path: Path) -> None:
    assert load(write(tmp_path, "[sip]\nt1 = 1\n")).sip.t1 == 1.0


# ------------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("[sip]\nidd = 1\n", ["[sip]", "'idd'", "known:", "min_expires"]),
        ("[sipp]\nid = 1\n", ["[sipp]", "known:", "sip"]),
        ("sip = 5\n", ["[sip]", "table"]),
        ('[sip]\nmin_expires = "60"\n', ["min_expires", "integer"]),
        ("[sip]\nmin_expires = 60.5\n", ["min_expires", "integer"]),
        ("[sip]\nmin_expires = true\n", ["min_expires", "integer"]),
        ('[sip]\nqop = "yes"\n', ["qop", "true or false"]),
        ("[sip]\nqop = 1\n", ["qop", "true or false"]),
        ("[sip]\npassword = 1234\n", ["password", "string"]),
        ('[sip]\nt1 = "fast"\n', ["t1", "number"]),
        ("[keepalive]\ninterval = 0\n", ["[keepalive]", "positive"]),
        ("[keepalive]\nmax_missed = -1\n", ["[keepalive]", "positive"]),
        ("[sip]\nmin_expires = 3601\n", ["min_expires", "3600"]),
        ("[sip]\nmin_expires = 0\n", ["min_expires"]),
        ("[sip]\nmin_expires = 600\ndefault_expires = 300\n", ["default_expires"]),
        ("[sip]\nmax_expires = 1800\n", ["max_expires"]),  # below the default 3600
        ("[sip]\nnonce_ttl = 1\n", ["nonce_ttl"]),
        ('[sip]\nid = "3402000000200000001"\n', ["[sip] id", "20 digits"]),
        ('[sip]\nid = "３4020000002000000001"\n', ["[sip] id", "20 digits"]),
        ('[platform]\ntimezone = "Mars/Olympus"\n', ["timezone", "Mars/Olympus"]),
        ('[platform]\ntimezone = ""\n', ["timezone"]),
        ('[platform]\ntimezone = "/etc/passwd"\n', ["timezone"]),
        ('[platform]\ntimezone = "Asia"\n', ["timezone"]),
        ('[sip]\nlisten = "http://0.0.0.0:5060"\n', ["listen", "udp://HOST:PORT"]),
        ('[sip]\nlisten = "udp://0.0.0.0"\n', ["listen", "HOST:PORT"]),
        ('[sip]\nlisten = "udp://0.0.0.0:65536"\n', ["listen"]),
        ('[sip]\nlisten = "udp://:5060"\n', ["listen"]),
        ("[sip]\nlisten = []\n", ["listen"]),
        ("[sip]\nlisten = [5060]\n", ["listen"]),
        ('[admin]\nlisten = "localhost"\n', ["[admin] listen", "HOST:PORT"]),
        ("media = 5\n", ["[media]", "table"]),
        ('[media]\nbackend = "gstreamer"\n', ["[media] backend", "embedded, zlmediakit"]),
        ('[media]\nrtp_ports = "30000"\n', ["[media]", "rtp_ports", "FIRST-LAST"]),
        ('[media]\nrtp_ports = "80-90"\n', ["[media]", "rtp_ports"]),
        ('[media]\nadvertise = "camera.example"\n', ["[media] advertise", "IP"]),
        ('[media]\nzlm_url = "127.0.0.1:80"\n', ["[media] zlm_url", "http://HOST"]),
        ('[media]\nzlm_url = "http://127.0.0.1:99999"\n', ["[media] zlm_url"]),
        ("[media]\nzlm_timeout = 0\n", ["[media] zlm_timeout"]),
        ("[media]\nzlm_retries = 11\n", ["[media] zlm_retries"]),
        ("[media]\nzlm_port = 80\n", ["[media] unknown key 'zlm_port'"]),
        ('[media]\nzlm_stream_prefix = "gb_1"\n', ["[media] zlm_stream_prefix"]),
        ('[media]\nbackend = "zlmediakit"\n', ["zlm_secret", "api.secret"]),
        ('[media]\nbackend = "zlmediakit"\nzlm_secret = "s"\nzlm_hook_secret = "short"\n',
         ["zlm_hook_secret", "16"]),
        ('upstream = "x"\n', ["upstream"]),
        ("[sip\n", ["not valid TOML"]),
    ],
)
def test_bad_config_says_what_is_wrong(tmp_path: Path, text: str, needles: list[str]) -> None:
    try:
        message = error(tmp_path, text)
    except Exception as exc:  # a TOML duplicate-table error is still a TOML error
        pytest.fail(f"not a ConfigError: {exc!r}")
    for needle in needles:
        assert needle in message, message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope.toml")


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(b"\xff\xfe[sip]\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load(path)


# ------------------------------------------------------------------------------------------------ flags


def test_flags_override_the_file(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, FULL))
    cfg = override(
        cfg,
        sip_id="35010000002000000001",
        domain=None,
        listen=["udp://127.0.0.1:5070"],
        db="/tmp/other.db",
        password="flagpw",
        admin_listen="127.0.0.1:0",
    )
    assert cfg.sip.id == "35010000002000000001"
    assert cfg.domain == "4401000000"  # the file set the domain explicitly; --domain was not given
    assert cfg.sip.listen == (ListenAddress("udp", "127.0.0.1", 5070),)
    assert cfg.registry.database == "/tmp/other.db"
    assert cfg.sip.password == "flagpw"
    assert cfg.admin.listen == "127.0.0.1:0"
    assert cfg.sip.min_expires == 120  # untouched by flags
    assert cfg.admin.token == "admintoken"


def test_sip_id_flag_moves_the_derived_domain() -> None:
    cfg = override(load(None), sip_id="35010000002000000001")
    assert (cfg.domain, cfg.realm) == ("3501000000", "3501000000")
    cfg = override(load(None), domain="3501000001")
    assert cfg.domain == "3501000001" and cfg.sip.id == "34020000002000000001"


def test_no_flags_change_nothing() -> None:
    cfg = load(None)
    assert override(cfg, sip_id=None, domain=None, listen=(), db=None, password=None, admin_listen=None) == cfg


@pytest.mark.parametrize(
    "flags",
    [
        {"sip_id": "123"},
        {"listen": ["udp://0.0.0.0"]},
        {"listen": ["sctp://0.0.0.0:5060"]},
        {"admin_listen": "nope"},
    ],
)
def test_bad_flags(flags: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        override(load(None), **flags)
