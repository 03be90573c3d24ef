"""The conformance clauses (issue 11): each turns observations into PASS / WARN / FAIL / SKIP with why and the
evidence. Pure: no IO, no clock (times come in the observations). References are to GB/T 28181-2016/2022 through
the spec digest (/work/shared/spec/GB28181.md, "§" below is the digest's section)."""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from gb28181 import sdp
from gb28181.channels import to_channel
from gb28181.conformance.model import (
    FAIL,
    MEDIA_UNAVAILABLE,
    PASS,
    SKIP,
    WARN,
    MediaObservations,
    MediaSession,
    Observations,
    Result,
)
from gb28181.conformance.trace import TraceEntry
from gb28181.manscdp import Envelope, ManscdpError, parse_envelope
from gb28181.manscdp.codec import decode as decode_message
from gb28181.manscdp.messages import CatalogItem, CatalogResponse
from gb28181.reports.quality import channel_id_problem, coordinate_problem
from sip.auth import parse_credentials
from sip.errors import RemoteProtocolError
from sip.serializer import serialize

Check = Callable[[Observations], tuple[str, str, list[str]]]

ANSWER_WARN = 5.0  # s: a catalog answer slower than this is flagged (WVP waits about this long)
# A UDP SIP message above this size is flagged. RFC 3261 §18.1.1 draws the line at 1300 B and App.M says a message
# above the MTU goes over TCP, but multi-item catalog MESSAGEs of 1.2-2 KB over UDP are the norm and work; 4000 B is
# where eXosip-based peers (most devices) start dropping them (spec digest §3, "UDP buffer").
MAX_UDP_MESSAGE = 4000
CLOCK_SKEW_WARN = 5.0  # s between the device's DeviceTime and the platform's clock after time sync
_PLACEHOLDERS = {"owner": "Owner", "civil_code": "CivilCode", "manufacturer": "Manufacturer", "address": "Address",
                 "model": "Model", "name": "Name"}  # fmt: skip
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")  # A.2.1: dateTime without zone


@dataclass(frozen=True)
class Clause:
    id: str
    title: str
    reference: str
    check: Check
    media: bool = False

    def run(self, obs: Observations) -> Result:
        if self.media and obs.media is None:
            return Result(self.id, self.title, self.reference, SKIP, MEDIA_UNAVAILABLE)
        if self.media and obs.media.skipped:
            return Result(self.id, self.title, self.reference, SKIP, obs.media.skipped)
        verdict, why, evidence = self.check(obs)
        return Result(self.id, self.title, self.reference, verdict, why, tuple(evidence))


# ------------------------------------------------------------------------------------------ trace helpers
def _requests(obs: Observations, method: str, direction: str = "in") -> list[TraceEntry]:
    return [e for e in obs.entries if e.is_request and e.method == method and e.direction == direction]


def _answer(obs: Observations, req: TraceEntry) -> TraceEntry | None:
    """The final response to a traced request (same Call-ID and CSeq, the other direction)."""
    m = req.message
    for e in obs.entries:
        if (not e.is_request and e.direction != req.direction and (e.status or 0) >= 200
                and e.message.call_id == m.call_id and e.message.cseq.seq == m.cseq.seq
                and e.method == req.method):  # fmt: skip
            return e
    return None


def _envelope(e: TraceEntry) -> Envelope | None:
    try:
        return parse_envelope(e.message.body) if e.message.body.strip() else None
    except ManscdpError:
        return None


def _manscdp(obs: Observations, cmd_type: str, kind: str = "Response", direction: str = "in",
             method: str = "MESSAGE") -> list[tuple[TraceEntry, Envelope]]:  # fmt: skip
    out = []
    for e in _requests(obs, method, direction):
        env = _envelope(e)
        if env is not None and env.cmd_type.lower() == cmd_type.lower() and env.kind == kind:
            out.append((e, env))
    return out


def _declared(body: bytes) -> str:
    m = re.match(rb'^[\s\x00]*<\?xml[^>]*?encoding\s*=\s*["\']?([A-Za-z0-9._-]+)', body.removeprefix(b"\xef\xbb\xbf"),
                 re.IGNORECASE)  # fmt: skip
    return m.group(1).decode("ascii").upper() if m else ""


def _probe_failed(obs: Observations, name: str, what: str) -> tuple[str, str, list[str]] | None:
    """FAIL with the probe's error (a timeout named as one), SKIP when the probe was not run."""
    p = obs.probe(name)
    if p is None:
        return SKIP, f"{what} was not probed in this run", []
    if not p.ok:
        how = f"no answer: {p.error}" if p.timed_out else p.error
        return FAIL, f"{what}: {how}", [f"probe {name}: {p.kind or 'error'} after {p.elapsed:.1f} s"]
    return None


def _el(tag: str, value: object) -> str:
    return f"<{tag}>{value}</{tag}>"


# ------------------------------------------------------------------------------------------ registration (§4)
def _register_pairs(obs: Observations) -> list[tuple[TraceEntry, TraceEntry | None]]:
    return [(r, _answer(obs, r)) for r in _requests(obs, "REGISTER")]


def register_digest(obs: Observations) -> tuple[str, str, list[str]]:
    """RFC 2617 §3.2.2 / RFC 3261 §22.4: when the challenge offers qop the answer must carry qop, nc, cnonce."""
    pairs = _register_pairs(obs)
    offered: dict[str, TraceEntry] = {}
    for req, ans in pairs:
        if ans is not None and ans.status == 401:
            offered[req.message.call_id] = ans
    answered = [(r, a) for r, a in pairs if r.message.headers.get("authorization")]
    if not answered:
        return SKIP, "no authenticated REGISTER seen during the run (start the run before the device registers)", []
    for req, _ in answered:
        try:
            creds = parse_credentials(req.message.headers.get("authorization") or "")[1]
        except (RemoteProtocolError, ValueError) as exc:
            return FAIL, f"unreadable Authorization: {exc}", [req.excerpt()]
        challenge = offered.get(req.message.call_id)
        qop_offered = challenge is not None and "qop" in (challenge.message.headers.get("www-authenticate") or "")
        if qop_offered and not creds.get("qop"):
            return (
                FAIL,
                'the challenge offered qop="auth" but the answer has no qop/nc/cnonce (RFC 2069 style)',
                [challenge.excerpt(0) if challenge else "", req.excerpt(0)],
            )
    return PASS, f"{len(answered)} authenticated REGISTER(s), digest as challenged", [answered[-1][0].excerpt(0)]


def register_username(obs: Observations) -> tuple[str, str, list[str]]:
    """§4.3: the digest username is normally the device ID; a different one needs per-device configuration."""
    for req, _ in _register_pairs(obs):
        header = req.message.headers.get("authorization")
        if not header:
            continue
        try:
            creds = parse_credentials(header)[1]
        except (RemoteProtocolError, ValueError) as exc:
            return FAIL, f"unreadable Authorization: {exc}", [req.excerpt(0)]
        if creds.get("username") != obs.device_id:
            return (
                WARN,
                f"digest username {creds.get('username')!r} differs from the device ID {obs.device_id}",
                [req.excerpt(0)],
            )
        return PASS, "digest username is the device ID", []
    return SKIP, "no authenticated REGISTER seen during the run", []


def _expires_of(e: TraceEntry) -> int | None:
    text = (e.message.headers.get("expires") or "").strip()
    return int(text) if text.isdigit() and len(text) <= 9 else None


def register_expiry(obs: Observations) -> tuple[str, str, list[str]]:
    """§4.1: requested vs honoured expiry; after 423 Interval Too Brief the device must ask at least Min-Expires."""
    pairs = [(r, a) for r, a in _register_pairs(obs) if a is not None]
    if not pairs:
        return SKIP, "no answered REGISTER seen during the run", []
    for (_, ans), (nxt, _) in itertools.pairwise(pairs):
        if ans.status == 423:
            minimum = int((ans.message.headers.get("min-expires") or "0").strip() or 0)
            asked = _expires_of(nxt) or 0
            if asked < minimum:
                return (
                    FAIL,
                    f"asked {asked} s again after 423 with Min-Expires {minimum}",
                    [ans.excerpt(0), nxt.excerpt(0)],
                )
    ok = [(r, a) for r, a in pairs if a.status == 200 and (_expires_of(r) or 0) > 0]
    if not ok:
        return SKIP, "no successful registration seen during the run", []
    req, ans = ok[-1]
    asked, granted = _expires_of(req), _expires_of(ans)
    first = _expires_of(pairs[0][0])
    why = f"asked {asked} s, granted {granted} s"
    if first is not None and first != asked:
        why += f" (first asked {first} s, corrected after the platform's answer)"
    return PASS, why, [ans.excerpt(0)]


def register_refresh(obs: Observations) -> tuple[str, str, list[str]]:
    """§4.1: the agent refreshes its registration before it expires."""
    ok = [(r, a) for r, a in _register_pairs(obs) if a is not None and a.status == 200 and (_expires_of(r) or 0) > 0]
    if len(ok) < 2:
        return SKIP, "no registration refresh within the run (a refresh comes near the granted expiry)", []
    for (r1, a1), (r2, _) in itertools.pairwise(ok):
        granted = _expires_of(a1) or _expires_of(r1) or 0
        gap = r2.at - a1.at
        if gap > granted:
            return FAIL, f"refreshed {gap:.0f} s after a {granted} s registration: it had lapsed", [r2.excerpt(0)]
    return PASS, f"{len(ok) - 1} refresh(es) before expiry", []


def register_time_sync(obs: Observations) -> tuple[str, str, list[str]]:
    """§4.4 (STD22 §9.10): the device sets its clock from the 200 OK's Date; DeviceStatus DeviceTime shows it."""
    failed = _probe_failed(obs, "status", "DeviceStatus")
    if failed:
        return SKIP, "DeviceStatus not answered, DeviceTime unknown", failed[2]
    p = obs.probe("status")
    assert p is not None
    text = str((p.value or {}).get("DeviceTime") or "").strip()
    if not text:
        return WARN, "DeviceStatus carries no DeviceTime: time sync cannot be verified", []
    try:
        local = datetime.fromisoformat(text.replace(" ", "T")[:19])
    except ValueError:
        return FAIL, f"DeviceTime {text!r} is not YYYY-MM-DDTHH:MM:SS", [_el("DeviceTime", text)]
    device_wall = (local - datetime(1970, 1, 1)).total_seconds() - obs.utc_offset
    skew = device_wall - (p.value or {}).get("_wall", obs.wall)
    if abs(skew) > CLOCK_SKEW_WARN:
        return (
            WARN,
            f"device clock {skew:+.0f} s off the platform's after registering (Date not applied?)",
            [_el("DeviceTime", text)],
        )
    return PASS, f"device clock within {abs(skew):.0f} s of the platform's", [_el("DeviceTime", text)]


def register_version(obs: Observations) -> tuple[str, str, list[str]]:
    """STD22 App.I: 2022 agents carry X-GB-ver; its value names the edition (2.0 = 2016, 3.0 = 2022)."""
    regs = _requests(obs, "REGISTER")
    if not regs:
        return SKIP, "no REGISTER seen during the run", []
    value = (regs[-1].message.headers.get("x-gb-ver") or "").strip()
    if not value:
        return PASS, "no X-GB-ver: a 2016 device", []
    if value not in ("1.0", "1.1", "2.0", "3.0"):
        return WARN, f"X-GB-ver {value!r} is not an edition number (2.0 or 3.0)", [f"X-GB-ver: {value}"]
    return PASS, f"X-GB-ver {value}", []


def register_after_403(obs: Observations) -> tuple[str, str, list[str]]:
    """§4.1: after a failure the agent retries after an interval, normally at least 60 s."""
    pairs = _register_pairs(obs)
    for i, (_, ans) in enumerate(pairs):
        if ans is not None and ans.status == 403 and i + 1 < len(pairs):
            gap = pairs[i + 1][0].at - ans.at
            if gap < 60:
                return WARN, f"retried {gap:.1f} s after 403 (expected at least 60 s)", [ans.excerpt(0)]
            return PASS, f"retried {gap:.0f} s after 403", []
    return SKIP, "no REGISTER refused with 403 during the run", []


# ------------------------------------------------------------------------------------------ keepalive (§5)
def _keepalives(obs: Observations) -> list[tuple[TraceEntry, Envelope]]:
    return _manscdp(obs, "Keepalive", kind="Notify")


def _configured_interval(obs: Observations) -> int | None:
    p = obs.probe("config")
    basic = (p.value or {}).get("BasicParam") if p is not None and p.ok else None
    value = basic.get("HeartBeatInterval") if isinstance(basic, dict) else None
    return int(value) if isinstance(value, str) and value.isdigit() and int(value) > 0 else None


def keepalive_cadence(obs: Observations) -> tuple[str, str, list[str]]:
    """§5 (STD22 §9.6.1, A.2.1.19): keepalives every HeartBeatInterval, as the device's own BasicParam says."""
    ka = _keepalives(obs)
    interval = _configured_interval(obs)
    if interval is None:
        return SKIP, "the device's HeartBeatInterval is unknown (ConfigDownload BasicParam not answered)", []
    if len(ka) < 3:
        return (
            SKIP,
            f"{len(ka)} keepalive(s) in a {obs.ended - obs.started:.0f} s run: too few for a cadence "
            f"(interval {interval} s)",
            [],
        )
    gaps = [b[0].at - a[0].at for a, b in itertools.pairwise(ka)]
    median = statistics.median(gaps)
    evidence = [f"gaps {', '.join(f'{g:.1f}' for g in gaps[:20])} s; HeartBeatInterval {interval} s"]
    if abs(median - interval) > max(1.0, 0.2 * interval):
        return FAIL, f"keepalives every {median:.1f} s, its BasicParam says {interval} s", evidence
    return PASS, f"keepalives every {median:.1f} s (HeartBeatInterval {interval} s)", evidence


def keepalive_status(obs: Observations) -> tuple[str, str, list[str]]:
    """A.2.5.2: Keepalive Status is OK (or ERROR with the faulty sub-devices)."""
    ka = _keepalives(obs)
    if not ka:
        return SKIP, "no keepalive during the run", []
    bad = [(e, env) for e, env in ka if env.fields.get("Status", "").strip() not in ("OK", "ERROR")]
    if bad:
        return (
            FAIL,
            f"{len(bad)} keepalive(s) with Status other than OK/ERROR",
            [_el("Status", bad[0][1].fields.get("Status", ""))],
        )
    errors = [env for _, env in ka if env.fields.get("Status", "").strip() == "ERROR"]
    if errors:
        return WARN, f"{len(errors)} keepalive(s) report Status ERROR (a faulty sub-device)", []
    return PASS, f"{len(ka)} keepalive(s), Status OK", []


def keepalive_address(obs: Observations) -> tuple[str, str, list[str]]:
    """§13 q23: the source address should stay put between keepalives; a moving port (carrier NAT) makes the
    platform's requests chase the device."""
    ka = _keepalives(obs)
    if len(ka) < 2:
        return SKIP, "fewer than two keepalives during the run", []
    peers = list(dict.fromkeys(e.peer for e, _ in ka))
    if len(peers) > 1:
        return WARN, f"keepalives came from {len(peers)} source addresses (NAT rebinding?)", [", ".join(peers[:6])]
    return PASS, f"{len(ka)} keepalives from {peers[0]}", []


# ------------------------------------------------------------------------------------------ catalog (§7.1)
def _catalog_packets(obs: Observations) -> list[tuple[TraceEntry, Envelope]]:
    """The Catalog Response packets answering the run's own catalog query (same SN)."""
    probe = obs.probe("catalog")
    sn = probe.value.get("sn") if probe is not None and probe.ok and isinstance(probe.value, dict) else None
    if sn is None:  # not from a probe: the last catalog query in the trace
        queries = _manscdp(obs, "Catalog", kind="Query", direction="out")
        sn = queries[-1][1].sn if queries else None
    return [(e, env) for e, env in _manscdp(obs, "Catalog") if sn is not None and env.sn == sn]


def _catalog_items(obs: Observations) -> list[tuple[TraceEntry, CatalogItem]]:
    out = []
    for e, _ in _catalog_packets(obs):
        try:
            msg = decode_message(e.message.body).message
        except ManscdpError:
            continue
        if isinstance(msg, CatalogResponse):
            out.extend((e, item) for item in msg.items)
    return out


def _catalog_gate(obs: Observations) -> tuple[str, str, list[str]] | None:
    failed = _probe_failed(obs, "catalog", "Catalog query")
    if failed:
        return failed
    if not _catalog_packets(obs):
        p = obs.probe("catalog")
        ended = p.value if p is not None and isinstance(p.value, dict) else {}
        return (
            FAIL,
            f"no answer: no Catalog Response packet came (the sync ended {ended.get('reason', '?')} after "
            f"{p.elapsed if p else 0:.1f} s)",
            [],
        )
    return None


def catalog_answer_time(obs: Observations) -> tuple[str, str, list[str]]:
    """§7.1: the catalog answer starts promptly after the query's 200."""
    failed = _probe_failed(obs, "catalog", "Catalog query")
    if failed:
        return failed
    packets = _catalog_packets(obs)
    queries = [(e, env) for e, env in _manscdp(obs, "Catalog", kind="Query", direction="out")
               if packets and env.sn == packets[0][1].sn]  # fmt: skip
    if not queries or not packets:
        return FAIL, "the query went out but no Catalog Response came back", []
    first = packets[0][0].at - queries[-1][0].at
    last = packets[-1][0].at - queries[-1][0].at
    why = f"first packet after {first:.2f} s, last after {last:.2f} s ({len(packets)} packets)"
    return (WARN if first > ANSWER_WARN else PASS), why, []


def catalog_sumnum(obs: Observations) -> tuple[str, str, list[str]]:
    """A.2.6.4: every packet carries the same SumNum, the total of distinct items."""
    gate = _catalog_gate(obs)
    if gate:
        return gate
    sums = Counter(env.fields.get("SumNum", "").strip() for _, env in _catalog_packets(obs))
    items = _catalog_items(obs)
    ids = Counter(item.device_id for _, item in items)
    dupes = [i for i, n in ids.items() if n > 1]
    if len(sums) != 1:
        return FAIL, f"SumNum varies between packets: {dict(sums)}", []
    (sum_text,) = sums
    if not sum_text.isdigit():
        return FAIL, f"SumNum {sum_text!r} is not a number", [_el("SumNum", sum_text)]
    if int(sum_text) != len(ids):
        return FAIL, f"SumNum {sum_text} but {len(ids)} distinct items received", [_el("SumNum", sum_text)]
    if dupes:
        return WARN, f"{len(dupes)} item(s) sent twice", [f"duplicate {d}" for d in dupes[:5]]
    return PASS, f"SumNum {sum_text} = items received", []


def catalog_packets(obs: Observations) -> tuple[str, str, list[str]]:
    """A.2.6.4 / App.M: items are grouped several to a MESSAGE; bodies stay below UDP fragmentation size."""
    gate = _catalog_gate(obs)
    if gate:
        return gate
    packets = _catalog_packets(obs)
    counts = [len(env_items) for env_items in (_items_of(e) for e, _ in packets)]
    total = sum(counts)
    sizes = [len(serialize(e.message)) for e, _ in packets]
    big = [s for (e, _), s in zip(packets, sizes, strict=True) if s > MAX_UDP_MESSAGE and e.peer.lower()[:3] == "udp"]
    evidence = [f"{len(packets)} packets, items per packet {counts[:20]}, message sizes {sizes[:20]} B"]
    if total > 2 and max(counts) == 1:
        return WARN, f"one item per MESSAGE: {total} items took {len(packets)} MESSAGEs", evidence
    if big:
        return WARN, f"{len(big)} UDP message(s) above {MAX_UDP_MESSAGE} B: App.M wants TCP above the MTU", evidence
    return PASS, f"{total} items in {len(packets)} packets, largest message {max(sizes)} B", evidence


def _items_of(e: TraceEntry) -> tuple[CatalogItem, ...]:
    try:
        msg = decode_message(e.message.body).message
    except ManscdpError:
        return ()
    return msg.items if isinstance(msg, CatalogResponse) else ()


def _charset_check(entries: Iterable[TraceEntry]) -> tuple[str, str, list[str]]:
    checked = 0
    for e in entries:
        body = e.message.body
        declared = _declared(body)
        if body.isascii():
            continue
        checked += 1
        try:
            body.decode("utf-8")
            is_utf8 = True
        except UnicodeDecodeError:
            is_utf8 = False
        if declared.replace("-", "") in ("GB2312", "GBK", "GB18030") and is_utf8:
            return (
                FAIL,
                f"bodies declared {declared} are UTF-8 (spec digest §13 q1)",
                [body[:120].decode("utf-8", "replace")],
            )
        if declared.replace("-", "") == "UTF8" and not is_utf8:
            return FAIL, "bodies declared UTF-8 are not UTF-8", []
        if not declared:
            return WARN, "no encoding declared in the XML", []
    if not checked:
        return PASS, "only ASCII in the bodies", []
    return PASS, f"{checked} non-ASCII bodies in their declared charset", []


def catalog_charset(obs: Observations) -> tuple[str, str, list[str]]:
    """§6: the XML declaration names the body's real encoding (GB2312/GB18030 by default)."""
    gate = _catalog_gate(obs)
    if gate:
        return gate
    return _charset_check(e for e, _ in _catalog_packets(obs))


def catalog_ids(obs: Observations) -> tuple[str, str, list[str]]:
    """§1, STD22 App.E: 20-digit IDs whose type code fits the item's role; ParentIDs name the device or nodes of
    its own tree, not the platform (§13 q6)."""
    gate = _catalog_gate(obs)
    if gate:
        return gate
    items = [item for _, item in _catalog_items(obs)]
    single = len(items) == 1
    problems: list[str] = []
    for item in items:
        channel = to_channel(item, obs.device_id, obs.platform_id, 0.0, single=single)
        problem = channel_id_problem(channel) if channel is not None else f"unusable DeviceID {item.device_id!r}"
        if problem:
            problems.append(f"{item.device_id}: {problem}")
    parent_server = [item.device_id for item in items if obs.platform_id in item.parent_ids]
    if problems:
        return FAIL, f"{len(problems)} item ID(s) out of Appendix E", problems[:10]
    if parent_server:
        return (
            WARN,
            f"{len(parent_server)} item(s) name the platform's ID as ParentID",
            [f"{i}: {_el('ParentID', obs.platform_id)}" for i in parent_server[:10]],
        )
    return PASS, f"{len(items)} item IDs fit Appendix E", []


def _videos(obs: Observations) -> list[CatalogItem]:
    items = [item for _, item in _catalog_items(obs)]
    out = []
    for item in items:
        code = item.device_id or ""
        if code == obs.device_id or (len(code) == 20 and code[10:13] in ("131", "132")):
            out.append(item)
    return out


_REQUIRED = (("name", "Name"), ("manufacturer", "Manufacturer"), ("model", "Model"), ("civil_code", "CivilCode"),
             ("address", "Address"), ("parental", "Parental"), ("register_way", "RegisterWay"),
             ("secrecy", "Secrecy"), ("status", "Status"))  # fmt: skip


def catalog_required(obs: Observations) -> tuple[str, str, list[str]]:
    """A.2.1.9 (§7.1): a video item carries Name, Manufacturer, Model, CivilCode, Address, Parental, RegisterWay,
    Secrecy and Status (ParentID too, unless the item is the device itself)."""
    gate = _catalog_gate(obs)
    if gate:
        return gate
    missing = []
    for item in _videos(obs):
        gone = [tag for attr, tag in _REQUIRED if getattr(item, attr) in (None, "")]
        if gone:
            missing.append(f"{item.device_id}: no {', '.join(gone)}")
    if missing:
        return FAIL, f"{len(missing)} video item(s) miss required fields", missing[:10]
    return PASS, f"{len(_videos(obs))} video items carry the required fields", []


def catalog_placeholders(obs: Observations) -> tuple[str, str, list[str]]:
    """§13 q10: literal placeholders (<Owner>Owner</Owner>, <CivilCode>CivilCode</CivilCode>, ...) are not data."""
    gate = _catalog_gate(obs)
    if gate:
        return gate
    found = []
    for _, item in _catalog_items(obs):
        for attr, literal in _PLACEHOLDERS.items():
            if (getattr(item, attr) or "").strip().lower() == literal.lower():
                found.append(f"{item.device_id}: {_el(literal, literal)}")
    if found:
        return WARN, f"{len(found)} placeholder value(s)", found[:10]
    return PASS, "no placeholder values", []


def catalog_coordinates(obs: Observations) -> tuple[str, str, list[str]]:
    """A.2.1.9 Longitude/Latitude: present on video items and inside China (reports/quality rules)."""
    gate = _catalog_gate(obs)
    if gate:
        return gate
    videos = _videos(obs)
    problems = [f"{v.device_id}: {p}" for v in videos if (p := coordinate_problem(v.longitude, v.latitude))]
    if problems and len(problems) == len(videos):
        return WARN, "no video item has plausible coordinates", problems[:10]
    if problems:
        return WARN, f"{len(problems)} of {len(videos)} video items without plausible coordinates", problems[:10]
    return PASS, f"{len(videos)} video items with plausible coordinates", []


def catalog_point_type(obs: Observations) -> tuple[str, str, list[str]]:
    """§14 (STD22 A.2.1.9 Info/PointType): 2022 devices classify every camera point."""
    if obs.gb_version != "3.0":
        return SKIP, "not a 2022 device (no X-GB-ver 3.0)", []
    gate = _catalog_gate(obs)
    if gate:
        return gate
    missing = [v.device_id for v in _videos(obs) if v.point_class is None]
    if missing:
        return (
            WARN,
            f"{len(missing)} video item(s) of a 2022 device without Info/PointType",
            [str(m) for m in missing[:10]],
        )
    return PASS, "every video item carries Info/PointType", []


# ------------------------------------------------------------------------------------------ queries (§7.2-7.7)
def _answered(obs: Observations, name: str, what: str, needed: tuple[str, ...]) -> tuple[str, str, list[str]]:
    failed = _probe_failed(obs, name, what)
    if failed:
        return failed
    p = obs.probe(name)
    assert p is not None
    value = p.value if isinstance(p.value, dict) else {}
    absent = [tag for tag in needed if not _dig(value, tag)]
    if absent:
        return FAIL, f"{what} answer lacks {', '.join(absent)}", []
    return PASS, f"{what} answered in {p.elapsed:.2f} s", [", ".join(f"{t}={_dig(value, t)}" for t in needed)]


def _dig(value: dict, path: str) -> object:
    for part in path.split("/"):
        value = value.get(part) if isinstance(value, dict) else None  # type: ignore[assignment]
    return value


def device_info(obs: Observations) -> tuple[str, str, list[str]]:
    """§7.2 (A.2.6.5): DeviceInfo with Manufacturer, Model, Firmware."""
    return _answered(obs, "info", "DeviceInfo", ("Manufacturer", "Model", "Firmware"))


def device_status(obs: Observations) -> tuple[str, str, list[str]]:
    """§7.3 (A.2.6.6): DeviceStatus with Online and Status."""
    return _answered(obs, "status", "DeviceStatus", ("Online", "Status"))


def config_basic(obs: Observations) -> tuple[str, str, list[str]]:
    """§7.6 (A.2.6.8): ConfigDownload BasicParam with the keepalive settings."""
    return _answered(obs, "config", "ConfigDownload BasicParam",
                     ("BasicParam/HeartBeatInterval", "BasicParam/HeartBeatCount"))  # fmt: skip


def preset_query(obs: Observations) -> tuple[str, str, list[str]]:
    """§7.7 (A.2.6.10): PresetQuery answered; a preset the run set shows up, and is gone once deleted."""
    failed = _probe_failed(obs, "presets", "PresetQuery")
    if failed:
        return failed
    p_set, p_after = obs.probe("preset-set"), obs.probe("presets-after-set")
    if p_set is None or p_after is None:
        return PASS, "PresetQuery answered (no PTZ channel to set a preset on)", []
    if not p_set.ok:
        return FAIL, f"setting a preset failed: {p_set.error}", []
    if not p_after.ok:
        return FAIL, f"PresetQuery after setting a preset: {p_after.error}", []
    number = str(p_set.value)
    listed = [str(x.get("preset")) for x in (p_after.value or {}).get("presets", []) if isinstance(x, dict)]
    if number not in listed:
        return FAIL, f"preset {number} set but not listed by PresetQuery", [f"listed {listed[:20]}"]
    return PASS, f"preset {number} set, listed, then deleted", []


def record_info(obs: Observations) -> tuple[str, str, list[str]]:
    """§7.4 (A.2.6.7): RecordInfo packets share SumNum, items are distinct, times are YYYY-MM-DDTHH:MM:SS."""
    failed = _probe_failed(obs, "records", "RecordInfo")
    if failed:
        return failed
    packets = _manscdp(obs, "RecordInfo")
    probe = obs.probe("records")
    sn = probe.value.get("sn") if probe is not None and isinstance(probe.value, dict) else None
    if isinstance(sn, int):  # the answer to the records probe only (the media probe searches too)
        packets = [(e, env) for e, env in packets if env.sn == sn]
    if not packets:
        return FAIL, "RecordInfo answered but no packet in the trace", []
    sums = {env.fields.get("SumNum", "").strip() for _, env in packets}
    bodies = b"".join(e.message.body for e, _ in packets)
    times = re.findall(rb"<(?:StartTime|EndTime)>([^<]*)</", bodies)
    bad = [t.decode("utf-8", "replace") for t in times if not _TIME.match(t.decode("ascii", "replace").strip())]
    paths = re.findall(rb"<Item>.*?<StartTime>([^<]*)</StartTime>.*?</Item>", bodies, re.S)
    dupes = [k for k, n in Counter(paths).items() if n > 1]
    if len(sums) != 1:
        return FAIL, f"SumNum varies between RecordInfo packets: {sorted(sums)}", []
    (sum_text,) = sums
    if sum_text.isdigit() and int(sum_text) != len(paths):
        return FAIL, f"SumNum {sum_text} but {len(paths)} records received", [_el("SumNum", sum_text)]
    if bad:
        return FAIL, f"{len(bad)} time(s) not YYYY-MM-DDTHH:MM:SS", [_el("StartTime", b) for b in bad[:5]]
    if dupes:
        return WARN, f"{len(dupes)} record(s) sent twice", []
    return PASS, f"{len(paths)} records in {len(packets)} packet(s), SumNum {sum_text}", []


def _control(name: str, what: str) -> Check:
    def check(obs: Observations) -> tuple[str, str, list[str]]:
        failed = _probe_failed(obs, name, what)
        if failed:
            return failed
        p = obs.probe(name)
        assert p is not None
        undo = obs.probe(f"{name}-undo")
        if undo is not None and not undo.ok:
            return WARN, f"{what} answered, but undoing it failed: {undo.error}", []
        return PASS, f"{what} answered Result OK in {p.elapsed:.2f} s", []

    check.__doc__ = f"§7.5 (A.2.3.1, A.2.6.2): {what} is answered with a DeviceControl Response Result OK."
    return check


def ptz_control(obs: Observations) -> tuple[str, str, list[str]]:
    """§7.5, §8 (A.3): a PTZCmd is taken (200 to the MESSAGE; PTZ has no Response in the standard)."""
    failed = _probe_failed(obs, "ptz", "PTZ")
    if failed:
        return failed
    return PASS, "PTZ move and stop taken", []


def response_cmd_type(obs: Observations) -> tuple[str, str, list[str]]:
    """§6: every Response echoes the CmdType and SN of the query it answers, with Result OK where it has one (a
    Notify Broadcast is answered by a Response Broadcast too, A.2.6.11)."""
    asked = {}
    for kind in ("Query", "Control", "Notify"):
        for e in _requests(obs, "MESSAGE", "out"):
            env = _envelope(e)
            if env is not None and env.kind == kind and env.sn is not None:
                asked[env.sn] = env.cmd_type
    answers = [(e, env) for e in _requests(obs, "MESSAGE") if (env := _envelope(e)) and env.kind == "Response"]
    if not answers:
        return SKIP, "no Response MESSAGE during the run", []
    wrong = [f"SN {env.sn}: asked {asked[env.sn]}, answered {env.cmd_type}" for _, env in answers
             if env.sn in asked and env.cmd_type.lower() != asked[env.sn].lower()]  # fmt: skip
    stray = [env for _, env in answers if env.sn not in asked]
    errors = [f"{env.cmd_type} SN {env.sn}: Result {env.fields.get('Result')}" for _, env in answers
              if env.fields.get("Result", "OK").strip().upper() not in ("OK", "")]  # fmt: skip
    if wrong:
        return FAIL, f"{len(wrong)} Response(s) with another CmdType than asked", wrong[:5]
    if stray:
        return (
            WARN,
            f"{len(stray)} Response(s) with an SN the platform never sent",
            [f"{e.cmd_type} SN {e.sn}" for e in stray[:5]],
        )
    if errors:
        return WARN, f"{len(errors)} Response(s) with Result ERROR", errors[:5]
    return PASS, f"{len(answers)} Response(s), CmdType and SN as asked", []


# ------------------------------------------------------------------------------------------ subscriptions (§9)
_EVENT = {"catalog": "catalog", "alarm": "alarm", "position": "presence"}
_NOTIFY_CMD = {"catalog": "Catalog", "alarm": "Alarm", "position": "MobilePosition"}


def _subscription(kind: str) -> Check:
    def check(obs: Observations) -> tuple[str, str, list[str]]:
        failed = _probe_failed(obs, f"subscribe-{kind}", f"{kind} SUBSCRIBE")
        if failed:
            return failed
        refresh = obs.probe(f"subscribe-{kind}-refresh")
        if refresh is not None and not refresh.ok:
            return FAIL, f"{kind} subscription accepted but its refresh failed: {refresh.error}", []
        notifies = [e for e in _requests(obs, "NOTIFY") if (env := _envelope(e)) and env.cmd_type == _NOTIFY_CMD[kind]]
        wrong = [e for e in notifies if _EVENT[kind] not in (e.message.headers.get("event") or "").lower()]
        if wrong:
            return (
                FAIL,
                f"{len(wrong)} {kind} NOTIFY(s) with Event {wrong[0].message.headers.get('event')!r}",
                [wrong[0].excerpt(0)],
            )
        refreshed = " and refreshed" if refresh is not None else ""
        seen = f", {len(notifies)} NOTIFY(s) with the right Event" if notifies else ", no NOTIFY during the run"
        return PASS, f"{kind} subscription accepted{refreshed}{seen}", []

    check.__doc__ = f"§9 (STD22 §9.11, App.N; RFC 6665): the {kind} subscription is accepted and refreshed."
    return check


FIRST_KEYFRAME_WARN = 4.0  # s from 200 OK to the first keyframe (a GOP of 2-4 s is usual)
INVITE_ANSWER_WARN = 5.0  # s from INVITE to 200 OK
LOSS_WARN = 0.05  # share of RTP packets lost (sequence gaps) that is flagged


def _session(obs: Observations, mode: str) -> tuple[MediaSession | None, tuple[str, str, list[str]] | None]:
    media: MediaObservations = obs.media
    session = media.sessions.get(mode)
    if session is None:
        return None, (SKIP, f"no {mode} session in this run", [])
    if session.skipped:
        return None, (SKIP, session.skipped, list(session.evidence))
    if session.error:
        ended = [] if session.ended else ["and the session could not be ended"]
        return None, (FAIL, " ".join([f"{mode}: {session.error}", *ended]), list(session.evidence))
    return session, None


def _stream_problems(s: MediaSession) -> tuple[list[str], list[str]]:
    """(failures, warnings) of a session's SDP answer and stream (§10.1, §10.3)."""
    fails, warns = [], []
    if s.answer_y and s.offer_y and s.answer_y != s.offer_y:
        warns.append(f"y= changed in the 200 OK: offered {s.offer_y}, answered {s.answer_y}")
    if not s.answer_y:
        warns.append("no y= in the 200 OK")
    if s.answer_f is None:
        warns.append("no f= in the 200 OK")
    if s.offer_setup:
        want = {"passive": "active", "active": "passive"}.get(s.offer_setup, "")
        if s.answer_setup != want:
            fails.append(f"a=setup:{s.answer_setup or '(none)'} answering a=setup:{s.offer_setup}")
    expected = s.answer_y or s.offer_y
    if not s.rtp_ssrcs:
        fails.append("no RTP received")
    elif 0 in s.rtp_ssrcs:
        fails.append("SSRC 0 in RTP")
    elif expected.isdigit() and int(expected) not in s.rtp_ssrcs:
        fails.append(f"RTP SSRC {s.rtp_ssrcs[0]} does not match y={expected}")
    if s.rtp_ssrcs and not s.ps_pack_header:
        fails.append("no PS pack header")
    if s.rtp_ssrcs and not (s.ps_system_header and s.ps_psm):
        warns.append("no PS system header / PSM on keyframes")
    if s.rtp_ssrcs and not s.codec:
        fails.append("no video codec detected")
    if s.rtp_ssrcs and s.first_keyframe is None:
        fails.append("no keyframe")
    elif s.first_keyframe is not None and s.first_keyframe > FIRST_KEYFRAME_WARN:
        warns.append(f"first keyframe after {s.first_keyframe:.1f} s")
    if s.answer_time is not None and s.answer_time > INVITE_ANSWER_WARN:
        warns.append(f"200 OK after {s.answer_time:.1f} s")
    if s.lost and s.lost > LOSS_WARN * (s.packets + s.lost):
        warns.append(f"{s.lost} of {s.packets + s.lost} RTP packets lost")
    if not s.ended:
        fails.append("the session could not be ended")
    return fails, warns


def _verdict(fails: list[str], warns: list[str], ok: str, s: MediaSession) -> tuple[str, str, list[str]]:
    """The verdict with the session's evidence (what the probe saw) under it; warnings beside a failure too."""
    evidence = list(s.evidence)
    if fails:
        return FAIL, "; ".join(fails), [*evidence, *(f"also: {w}" for w in warns)]
    if warns:
        return WARN, "; ".join(warns), evidence
    return PASS, ok, evidence


def _live(mode: str) -> Check:
    def check(obs: Observations) -> tuple[str, str, list[str]]:
        s, early = _session(obs, mode)
        if s is None:
            return early  # type: ignore[return-value]
        fails, warns = _stream_problems(s)
        return _verdict(fails, warns, f"{s.codec} in PS, SSRC {s.rtp_ssrcs[0] if s.rtp_ssrcs else '-'}, "
                                      f"first keyframe after {s.first_keyframe or 0:.1f} s", s)  # fmt: skip

    check.__doc__ = f"§10.1, §10.3: live {mode}: 200 OK, SDP y=/f=/a=setup, RTP SSRC = y=, PS structure, codec."
    return check


def media_playback(obs: Observations) -> tuple[str, str, list[str]]:
    """§10.4, §10.5, §7.10: playback streams, takes MANSRTSP PAUSE/PLAY/Scale, ends with MediaStatus 121."""
    s, early = _session(obs, "playback")
    if s is None:
        return early  # type: ignore[return-value]
    fails, warns = _stream_problems(s)
    fails += [f"MANSRTSP {name} refused" for name, ok in s.controls if not ok]
    if s.media_status_121 is False:
        fails.append("no MediaStatus 121 at the end of the file")
    return _verdict(fails, warns, "playback with pause/resume/scale and MediaStatus 121", s)


def media_download(obs: Observations) -> tuple[str, str, list[str]]:
    """§10.4: download at the asked speed, ending with MediaStatus 121."""
    s, early = _session(obs, "download")
    if s is None:
        return early  # type: ignore[return-value]
    fails, warns = _stream_problems(s)
    if s.asked_speed and s.speed is not None and s.speed < 0.5 * s.asked_speed:
        warns.append(f"downloaded at {s.speed:.1f}x, asked {s.asked_speed:g}x")
    if s.media_status_121 is False:
        fails.append("no MediaStatus 121 at the end of the download")
    return _verdict(fails, warns, f"download at {s.speed or 0:.1f}x", s)


BROADCAST_ANSWER_WARN = 5.0  # s from the Notify Broadcast to its Response, and from the Response to the INVITE
BROADCAST_SHORT = 0.8  # share of the tone that must have been sent before the device's own BYE is not flagged


def _sdp_of(e: TraceEntry) -> sdp.SessionDescription | None:
    try:
        return sdp.parse(e.message.body) if e.message.body.strip() else None
    except sdp.SdpError:
        return None


def _audio_offer(e: TraceEntry) -> tuple[sdp.SessionDescription, sdp.Media] | None:
    offer = _sdp_of(e)
    audio = next((m for m in offer.media if m.kind == "audio"), None) if offer is not None else None
    return (offer, audio) if offer is not None and audio is not None else None


def _audio_codecs(m: sdp.Media) -> str:
    rtpmap = m.rtpmap
    names = [rtpmap.get(pt, {8: "PCMA", 96: "PS"}.get(pt, str(pt))).split("/")[0].upper() for pt in m.payload_types]
    return ", ".join(names) or "none"


def _broadcast_exchange(obs: Observations, started: float, ended: float) -> dict[str, TraceEntry | Envelope | None]:
    """The broadcast's SIP exchange in the trace between ``started`` and ``ended`` (spec digest §7.11 steps 1-4)."""
    window = [e for e in obs.entries if started <= e.at <= ended]
    sub = Observations(obs.device_id, obs.platform_id, entries=window)
    notify = next(iter(_manscdp(sub, "Broadcast", kind="Notify", direction="out")), None)
    found: dict[str, TraceEntry | Envelope | None] = {"notify": None, "notify_env": None, "response": None,
                                                      "response_env": None, "invite": None, "invite_answer": None,
                                                      "ack": None, "bye": None, "bye_answer": None}  # fmt: skip
    if notify is not None:
        found["notify"], found["notify_env"] = notify
        found["response"], found["response_env"] = next(
            ((e, env) for e, env in _manscdp(sub, "Broadcast") if env.sn == notify[1].sn), (None, None))
    invite = next((e for e in _requests(sub, "INVITE") if _audio_offer(e) is not None), None)
    if invite is not None:
        found["invite"], found["invite_answer"] = invite, _answer(sub, invite)
        call_id = invite.message.call_id
        found["ack"] = next((e for e in _requests(sub, "ACK") if e.message.call_id == call_id), None)
        bye = next((e for e in window if e.is_request and e.method == "BYE" and e.message.call_id == call_id), None)
        if bye is not None:
            found["bye"], found["bye_answer"] = bye, _answer(sub, bye)
    return found


def media_broadcast(obs: Observations) -> tuple[str, str, list[str]]:
    """§7.11 (GB/T 28181-2016 §9.12, A.2.5.5, A.2.6.11): where the device lists a voice output, a short broadcast:
    Notify Broadcast answered Response Result OK, then the device INVITEs the SourceID (m=audio PCMA 8 and/or PS 96,
    recvonly, y=, Subject), ACKs our sendonly 200, takes our G.711A RTP, and the BYE ends it."""
    media: MediaObservations = obs.media
    a = media.broadcast
    if a is None:
        if media.broadcast_skip:
            return SKIP, media.broadcast_skip, []
        if not media.voice_output:
            return SKIP, "the device lists no voice output", []
        return SKIP, "no broadcast in this run", []
    x = _broadcast_exchange(obs, a.started, a.ended)
    notify, response, invite = x["notify"], x["response"], x["invite"]
    n_env, r_env = x["notify_env"], x["response_env"]
    fails: list[str] = []
    warns: list[str] = []
    ev = [f"broadcast of a {a.seconds:g} s tone to {a.target}"]
    if isinstance(notify, TraceEntry) and isinstance(n_env, Envelope):
        sent = _answer(obs, notify)
        ev.append(f"Notify Broadcast SN {n_env.sn}: SourceID {n_env.fields.get('SourceID', '')}, TargetID "
                  f"{n_env.fields.get('TargetID', '')} -> {sent.status if sent else 'no'} answer to the MESSAGE")
    else:
        ev.append("no Notify Broadcast seen in the trace")
        if not a.error:  # the service sent one: the trace did not keep it
            warns.append("the broadcast's Notify is not in the run's trace")
    result = ""
    if isinstance(response, TraceEntry) and isinstance(r_env, Envelope) and isinstance(notify, TraceEntry):
        result = r_env.fields.get("Result", "").strip().upper()
        took = response.at - notify.at
        ev.append(f"Response Broadcast Result {result or '(none)'} {took:.2f} s after the Notify")
        if result != "OK" and not a.error:  # the service's error says it already
            fails.append(f"Response Broadcast Result {result or '(none)'}")
        elif took > BROADCAST_ANSWER_WARN:
            warns.append(f"Response Broadcast after {took:.1f} s")
    elif notify is not None:
        ev.append("no Response Broadcast MESSAGE (A.2.6.11)")
        if invite is not None:
            warns.append("no Response Broadcast MESSAGE before the audio INVITE (A.2.6.11)")
    if isinstance(invite, TraceEntry):
        offer, m = _audio_offer(invite) or (None, None)
        assert offer is not None and m is not None
        after = invite.at - (response.at if isinstance(response, TraceEntry) else notify.at if notify else a.started)
        since = "Response" if isinstance(response, TraceEntry) else "Notify"
        subject = invite.message.headers.get("subject") or ""
        ev.append(f"device INVITE {invite.message.uri} {after:.2f} s after the {since}: m=audio {m.port} {m.proto} "
                  f"{' '.join(m.formats)} ({_audio_codecs(m)}), {m.direction or 'no direction'}, "
                  f"y={offer.ssrc or '(none)'}, Subject {subject or '(none)'}")  # fmt: skip
        if not any(c in ("PCMA", "PS") for c in _audio_codecs(m).split(", ")):
            fails.append(f"the audio INVITE offers neither PCMA nor PS ({_audio_codecs(m)})")
        if not offer.ssrc:
            warns.append("no y= in the audio INVITE")
        if m.direction not in ("recvonly", None):
            warns.append(f"the audio INVITE is {m.direction}, not recvonly")
        if not subject:
            warns.append("no Subject in the audio INVITE")
        if after > BROADCAST_ANSWER_WARN:
            warns.append(f"audio INVITE {after:.1f} s after the {since}")
        answer = x["invite_answer"]
        if isinstance(answer, TraceEntry):
            ours = _sdp_of(answer)
            om = next((m for m in ours.media if m.kind == "audio"), None) if ours is not None else None
            ev.append(f"our {answer.status}" + (f": {om.direction}, {_audio_codecs(om)}, y={ours.ssrc}"
                                                if om is not None and ours is not None else ""))  # fmt: skip
        ack = x["ack"]
        ev.append(f"ACK {ack.at - answer.at:.2f} s after our 200" if isinstance(ack, TraceEntry) and
                  isinstance(answer, TraceEntry) else "no ACK to our 200")  # fmt: skip
    elif result == "OK" or (notify is not None and response is None):
        ev.append("no audio INVITE from the device in the trace")
        if not a.error:  # the service had one: the trace did not keep it
            warns.append("the device's audio INVITE is not in the run's trace")
    row = a.row or {}
    if row:
        payload = {8: "PCMA", 96: "PS"}.get(row.get("payload") or 0, "audio")
        ev.append(f"RTP sent: {row.get('packets', 0)} packets, {row.get('sent_seconds', 0):g} s of {payload} over "
                  f"{row.get('transport') or '?'} to {row.get('media_address') or '?'}, SSRC {row.get('ssrc') or '?'}")
        if not row.get("packets"):
            fails.append("no RTP sent")
        reason = str(row.get("reason") or "")
        if "device ended" in reason and float(row.get("sent_seconds") or 0) < BROADCAST_SHORT * a.seconds:
            warns.append(f"the device hung up after {float(row.get('sent_seconds') or 0):g} s of {a.seconds:g} s")
    bye, bye_answer = x["bye"], x["bye_answer"]
    if isinstance(bye, TraceEntry):
        who = "ours" if bye.direction == "out" else "the device's"
        ev.append(f"BYE ({who}) " + (f"answered {bye_answer.status}" if isinstance(bye_answer, TraceEntry)
                                     else "not answered"))  # fmt: skip
    ended = str(row.get("reason") or "") or "by the broadcast service, on the error"
    ev.append(f"ended: {ended}" if a.over else "not ended: the broadcast is still running")
    ev += list(a.notes)
    if a.error:
        fails.insert(0, a.error)
    if not a.over:
        fails.append("the broadcast could not be ended")
    if fails:
        return FAIL, "; ".join(dict.fromkeys(fails)), [*ev, *(f"also: {w}" for w in warns)]
    if warns:
        return WARN, "; ".join(warns), ev
    return PASS, (f"Result OK, audio INVITE answered and ACKed, {row.get('packets', 0)} RTP packets "
                  f"({row.get('sent_seconds', 0):g} s) sent, ended: {ended}"), ev


# ------------------------------------------------------------------------------------------ the list
CLAUSES: tuple[Clause, ...] = (
    Clause("register.digest", "digest qop handling", "§4.1, §4.3 (STD22 §9.1.2; RFC 2617 §3.2.2)", register_digest),
    Clause("register.username", "digest username vs device ID", "§4.3", register_username),
    Clause("register.expiry", "requested vs honoured expiry", "§4.1 (STD22 §9.1.1)", register_expiry),
    Clause("register.refresh", "refresh before expiry", "§4.1 (STD22 §9.1.1)", register_refresh),
    Clause("register.time-sync", "Date-based time sync", "§4.4 (STD22 §9.10)", register_time_sync),
    Clause("register.x-gb-ver", "X-GB-ver header", "§4.1 (STD22 App.I)", register_version),
    Clause("register.after-403", "retry interval after 403", "§4.1 (STD22 §9.1.1)", register_after_403),
    Clause("keepalive.cadence", "keepalive cadence vs own settings", "§5 (STD22 §9.6.1, A.2.1.19)",
           keepalive_cadence),
    Clause("keepalive.status", "keepalive Status values", "§5 (A.2.5.2)", keepalive_status),
    Clause("keepalive.address", "address stability", "§5, §13 q23", keepalive_address),
    Clause("catalog.answer-time", "catalog answer time", "§7.1 (STD22 §9.5)", catalog_answer_time),
    Clause("catalog.sumnum", "SumNum vs items", "§7.1 (A.2.6.4)", catalog_sumnum),
    Clause("catalog.packets", "items per packet and packet sizes", "§7.1 (App.M), §3", catalog_packets),
    Clause("catalog.charset", "charset declared vs actual", "§6, §13 q1", catalog_charset),
    Clause("catalog.ids", "ID compliance of every item", "§1 (STD22 App.E), §13 q6", catalog_ids),
    Clause("catalog.required", "required item fields", "§7.1 (A.2.1.9)", catalog_required),
    Clause("catalog.placeholders", "placeholder values", "§13 q10", catalog_placeholders),
    Clause("catalog.coordinates", "coordinates present and plausible", "§7.1 (A.2.1.9)", catalog_coordinates),
    Clause("catalog.point-type", "PointType on 2022 devices", "§14 (STD22 A.2.1.9)", catalog_point_type),
    Clause("query.device-info", "DeviceInfo", "§7.2 (A.2.4.4, A.2.6.5)", device_info),
    Clause("query.device-status", "DeviceStatus", "§7.3 (A.2.4.2, A.2.6.6)", device_status),
    Clause("query.config-basic", "ConfigDownload BasicParam", "§7.6 (A.2.4.7, A.2.6.8)", config_basic),
    Clause("query.presets", "PresetQuery", "§7.7 (A.2.4.8, A.2.6.10)", preset_query),
    Clause("query.record-info", "RecordInfo packets, duplicates, time format", "§7.4 (A.2.4.5, A.2.6.7)",
           record_info),
    Clause("control.ptz", "DeviceControl PTZ", "§7.5, §8 (A.2.3.1, A.3)", ptz_control),
    Clause("control.record", "DeviceControl RecordCmd", "§7.5 (A.2.3.1, A.2.6.2)", _control("record", "RecordCmd")),
    Clause("control.guard", "DeviceControl GuardCmd", "§7.5 (A.2.3.1, A.2.6.2)", _control("guard", "GuardCmd")),
    Clause("control.reset-alarm", "DeviceControl AlarmCmd ResetAlarm", "§7.8 (A.2.3.1, A.2.6.2)",
           _control("reset-alarm", "ResetAlarm")),
    Clause("response.cmd-type", "Responses' CmdType, SN and Result", "§6", response_cmd_type),
    Clause("subscribe.catalog", "catalog subscription", "§9 (STD22 §9.11, App.N)", _subscription("catalog")),
    Clause("subscribe.alarm", "alarm subscription", "§9 (STD22 §9.11)", _subscription("alarm")),
    Clause("subscribe.position", "mobile position subscription", "§9, §7.9 (A.2.4.9)", _subscription("position")),
    # Media (issue 11 "Media"): sessions run by Platform.media_probe (gb28181/media_probe.py).
    Clause("media.live-udp", "live over UDP: 200 OK, SDP y=/f=, SSRC, PS, first keyframe", "§10.1, §10.3",
           _live("live-udp"), media=True),
    Clause("media.live-tcp-passive", "live over TCP passive", "§10.1 (a=setup)", _live("live-tcp-passive"),
           media=True),
    Clause("media.live-tcp-active", "live over TCP active", "§10.1 (a=setup)", _live("live-tcp-active"),
           media=True),
    Clause("media.playback", "playback: MANSRTSP pause/resume/scale, MediaStatus 121", "§10.4, §10.5, §7.10",
           media_playback, media=True),
    Clause("media.download", "download with speed", "§10.4", media_download, media=True),
    Clause("media.broadcast", "voice broadcast", "§7.11 (STD22 §9.12)", media_broadcast, media=True),
)  # fmt: skip
BY_ID = {c.id: c for c in CLAUSES}


def select(only: Iterable[str] = ()) -> list[Clause]:
    """Clauses by ID or prefix (``catalog`` selects every ``catalog.*``); ValueError names an unknown one."""
    wanted = [w.strip() for w in only if w.strip()]
    if not wanted:
        return list(CLAUSES)
    out: list[Clause] = []
    for w in wanted:
        hits = [c for c in CLAUSES if c.id == w or c.id.startswith(w.rstrip(".") + ".")]
        if not hits:
            raise ValueError(f"unknown clause {w!r} (known: {', '.join(BY_ID)})")
        out.extend(h for h in hits if h not in out)
    return out


def evaluate(obs: Observations, clauses: Iterable[Clause] = CLAUSES) -> list[Result]:
    return [c.run(obs) for c in clauses]
