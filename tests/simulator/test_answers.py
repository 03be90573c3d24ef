"""What devices answer to each query and control, decoded with the platform's own MANSCDP codec: catalog packets
per profile (size, charset, fields), DeviceInfo, DeviceStatus, ConfigDownload, PresetQuery, RecordInfo, DeviceControl
reflected in state, subscriptions with their NOTIFYs, and INVITEs with a bad offer refused (media: test_media.py)."""

from __future__ import annotations

import math
from datetime import datetime

import pytest

from gb28181.manscdp.codec import decode, encode
from gb28181.manscdp.control import GuardCmd, PtzCmd, RecordCmd, TeleBoot
from gb28181.manscdp.messages import (
    CatalogQuery,
    CatalogResponse,
    ConfigDownloadQuery,
    DeviceInfoQuery,
    DeviceStatusQuery,
    PresetQuery,
    RecordInfoQuery,
)
from gb28181.manscdp.ptz import preset_delete, preset_set
from gb28181.simulator.answers import CST
from gb28181.simulator.device import Notify, SimDevice
from gb28181.simulator.profile import load_profile, profile_names
from gb28181.simulator.registration import State
from tests.simulator.helpers import SERVER, answer, device, digest, platform_request, register, sends

WALL = datetime(2026, 5, 1, 12, 30, tzinfo=CST).timestamp()  # device clocks run on Beijing time


def _ask(d: SimDevice, body: bytes, now: float = 1.0) -> list[bytes]:
    """Send the platform's MESSAGE; return every body the device sends back (answering each at once)."""
    reply = d.on_request(platform_request("MESSAGE", d.device_id, body), now, WALL, None)
    assert reply is not None and reply.status == 200
    bodies = []
    for _ in range(1000):
        out = sends(d, "message")
        if not out:
            break
        (request,) = out  # App.M: one in flight at a time
        bodies.append(request.body)
        d.on_answer("message", answer(request, 200), now)
    return bodies


def _registered(profile: str, **kw: object) -> SimDevice:
    d = device(profile, **kw)
    register(d, digest())
    return d


SINGLE = [n for n in profile_names() if n != "mixed"]


@pytest.mark.parametrize("name", SINGLE)
def test_catalog_packets_follow_the_profile(name: str) -> None:
    d = _registered(name)
    p = load_profile(name)
    bodies = _ask(d, encode(CatalogQuery(sn=77, device_id=d.device_id)))
    total = len(d.inv.channels)
    assert len(bodies) == math.ceil(total / p.catalog_per_packet)
    items = []
    for body in bodies:
        declared = body.split(b"?>")[0]
        if p.has("utf8-declared-gb2312"):
            assert b'encoding="GB2312"' in declared
            body.decode("utf-8")  # really UTF-8
        else:
            assert f'encoding="{p.charset}"'.encode() in declared
        decoded = decode(body)
        msg = decoded.message
        assert isinstance(msg, CatalogResponse) and msg.sn == 77 and msg.sum_num == total
        assert msg.num == len(msg.items) <= p.catalog_per_packet
        items.extend(msg.items)
    assert [i.device_id for i in items] == [c.id for c in d.inv.channels]
    assert [i.name for i in items] == [c.name for c in d.inv.channels]
    cams = [i for i in items if i.device_id in {c.id for c in d.inv.videos}]
    assert all((i.point_class == 1) == (p.gb_version == "2022") for i in cams)


def test_gb2312_bodies_are_gb_encoded() -> None:
    d = _registered("tianwang-nvr")
    (first, *_) = _ask(d, encode(CatalogQuery(sn=1, device_id=d.device_id)))
    assert "人民广场监控点1".encode("gb18030") in first


def test_device_info_and_status_reflect_controls() -> None:
    d = _registered("tianwang-nvr")
    (info,) = _ask(d, encode(DeviceInfoQuery(sn=2, device_id=d.device_id)))
    m = decode(info).message
    assert (m.manufacturer, m.model, m.firmware, m.channel, m.device_type) == (
        "Hikvision", "DS-7716N-E4", "V4.1.64", 16, "NVR",
    )  # fmt: skip
    (ack,) = _ask(d, GuardCmd(arm=True).to_xml(3, d.device_id))
    assert b"<Result>OK</Result>" in ack and b"DeviceControl" in ack
    (ack,) = _ask(d, RecordCmd(start=True).to_xml(4, d.device_id))
    (status,) = _ask(d, encode(DeviceStatusQuery(sn=5, device_id=d.device_id)))
    s = decode(status).message
    assert s.record == "ON" and s.online == "ONLINE" and s.device_time == "2026-05-01T12:30:00"
    assert [i.duty_status for i in s.alarm_status] == ["ONDUTY", "ONDUTY"]


def test_config_download_reports_the_keepalive_settings() -> None:
    d = _registered("xueliang-village-nvr")
    (body,) = _ask(d, encode(ConfigDownloadQuery(sn=6, device_id=d.device_id, config_type=("BasicParam",))))
    bp = decode(body).message.basic_param
    assert (bp.heart_beat_interval, bp.heart_beat_count, bp.expiration) == (30, 3, 3600)
    (body,) = _ask(d, encode(ConfigDownloadQuery(sn=7, device_id=d.device_id, config_type=("Nope",))))
    assert decode(body).error == "ERROR: unsupported ConfigType Nope"


def test_presets_follow_ptz_commands() -> None:
    d = _registered("tianwang-nvr")
    cam = d.inv.videos[2].id
    assert _ask(d, PtzCmd(preset_set(3), preset_name="大门").to_xml(8, cam)) == []  # PTZ: no Response (A.2.3.1)
    assert _ask(d, PtzCmd(preset_set(5)).to_xml(9, cam)) == []
    _ask(d, PtzCmd(preset_delete(5)).to_xml(10, cam))
    (body,) = _ask(d, encode(PresetQuery(sn=11, device_id=cam)))
    m = decode(body).message
    assert [(i.preset_id, i.preset_name) for i in m.items] == [(3, "大门")] and m.sum_num == 1


def test_record_info_is_a_synthetic_list_in_several_packets() -> None:
    d = _registered("tianwang-nvr")  # 2 records per packet
    cam = d.inv.videos[0].id
    q = RecordInfoQuery(sn=12, device_id=cam, start_time="2026-05-01T00:00:00", end_time="2026-05-01T23:59:59",
                        type="all")  # fmt: skip
    bodies = _ask(d, encode(q))
    records = [r for b in bodies for r in decode(b).message.items]
    assert len(records) == 13  # 00:00 to 12:30 (now), hour by hour
    assert len(bodies) == 7 and {decode(b).message.sum_num for b in bodies} == {13}
    assert records[0].start_time == "2026-05-01T00:00:00" and records[-1].end_time == "2026-05-01T12:30:00"
    assert records[0].type == "alarm" and records[1].type == "time"
    q = RecordInfoQuery(sn=13, device_id=cam, start_time="2026-05-01T00:00:00", end_time="2026-05-01T12:00:00",
                        type="alarm")  # fmt: skip
    alarms = [r for b in _ask(d, encode(q)) for r in decode(b).message.items]
    assert [r.start_time[11:13] for r in alarms] == ["00", "04", "08"]
    bad = RecordInfoQuery(sn=14, device_id=cam, start_time="yesterday", end_time="today")
    (body,) = _ask(d, encode(bad))
    assert decode(body).error == "ERROR: bad StartTime/EndTime"


def test_teleboot_reboots() -> None:
    d = _registered("tianwang-ipc")
    assert _ask(d, TeleBoot().to_xml(15, d.device_id)) == []
    assert d.state is State.OFF and d.next_deadline() == 3.0


def test_queries_before_registering_get_403_and_bad_xml_400() -> None:
    d = device("tianwang-ipc")
    d.power_on(0.0)
    reply = d.on_request(platform_request("MESSAGE", d.device_id, b"<Query/>"), 0.0, WALL, None)
    assert reply is not None and reply.status == 403
    register(d := device("tianwang-ipc"), digest())
    reply = d.on_request(platform_request("MESSAGE", d.device_id, b"<Query><CmdType>"), 0.0, WALL, None)
    assert reply is not None and reply.status == 400


def test_invite_with_a_bad_offer_gets_a_clear_error() -> None:
    d = _registered("tianwang-ipc")
    reply = d.on_request(platform_request("INVITE", d.inv.videos[0].id, b"v=0\r\n"), 1.0, WALL, None)
    assert reply is not None and reply.status in (400, 488)
    reinvite = d.on_request(platform_request("INVITE", d.inv.videos[0].id, b"v=0\r\n"), 1.0, WALL, ("c", "a", "b"))
    assert reinvite is not None and reinvite.status == 488


def _subscribe(d: SimDevice, body: bytes, expires: int, now: float = 1.0):  # type: ignore[no-untyped-def]
    req = platform_request("SUBSCRIBE", d.device_id, body, [("Event", "Catalog;id=7"), ("Expires", str(expires))])
    reply = d.on_request(req, now, WALL, None)
    assert reply is not None
    return req, reply


def test_catalog_subscription_notifies_video_loss() -> None:
    d = _registered("xueliang-village-nvr")
    req, reply = _subscribe(d, encode(CatalogQuery(sn=20, device_id=d.device_id)), 600)
    assert reply.status == 200 and reply.to_tag and ("Expires", "600") in reply.headers
    dialog_id = (req.call_id, reply.to_tag, "pf1")
    assert dialog_id in d.subscriptions and not d.drain()  # nothing is offline yet
    cam = d.inv.videos[1].id
    assert d.video_lost(cam, True, 5.0)
    (notify,) = d.drain()
    assert isinstance(notify, Notify) and notify.dialog_id == dialog_id
    headers = dict(notify.headers)
    assert headers["Event"] == "Catalog;id=7" and headers["Subscription-State"] == "active;expires=596"
    items = decode(notify.body).message.items
    assert [(i.device_id, i.event) for i in items] == [(cam, "VLOST")]
    d.on_timer(30.0)
    (ka,) = sends(d, "keepalive")
    assert cam.encode() in ka.body  # the keepalive lists the faulty channel
    d.on_timer(601.0)
    ended = [o for o in d.drain() if isinstance(o, Notify)]
    assert dict(ended[-1].headers)["Subscription-State"] == "terminated;reason=timeout"
    assert not d.subscriptions


def test_position_subscription_reports_every_interval_and_alarm_goes_by_notify() -> None:
    d = _registered("mobile-4g-camera")
    body = (b'<?xml version="1.0"?><Query><CmdType>MobilePosition</CmdType><SN>3</SN><DeviceID>'
            + d.device_id.encode() + b"</DeviceID><Interval>10</Interval></Query>")  # fmt: skip
    _subscribe(d, body, 600)
    assert d.next_deadline() == 1.0
    d.on_timer(1.0)
    first = [o for o in d.drain() if isinstance(o, Notify)]
    assert len(first) == 1 and decode(first[0].body).message.longitude is not None
    d.on_timer(11.0)
    assert len([o for o in d.drain() if isinstance(o, Notify)]) == 1
    alarm_body = b'<?xml version="1.0"?><Query><CmdType>Alarm</CmdType><SN>4</SN><DeviceID>x</DeviceID></Query>'
    _subscribe(d, alarm_body, 600)
    assert d.alarm(None, 12.0, WALL)
    (n,) = [o for o in d.drain() if isinstance(o, Notify)]
    m = decode(n.body).message
    assert (m.alarm_method, m.alarm_type, m.device_id) == (5, 2, d.inv.videos[0].id)


def test_alarm_without_subscription_is_a_message_and_unknown_events_get_489() -> None:
    d = _registered("tianwang-ipc")
    assert d.alarm(None, 2.0, WALL)
    (msg,) = sends(d, "message")
    assert b"<CmdType>Alarm</CmdType>" in msg.body and msg.uri == f"sip:{SERVER.id}@{SERVER.domain}"
    _, reply = _subscribe(d, b'<?xml version="1.0"?><Query><CmdType>Weather</CmdType></Query>', 60)
    assert reply.status == 489


def test_unsubscribe_in_dialog_ends_with_a_terminated_notify() -> None:
    d = _registered("tianwang-nvr")
    req, reply = _subscribe(d, encode(CatalogQuery(sn=21, device_id=d.device_id)), 600)
    dialog_id = (req.call_id, reply.to_tag, "pf1")
    again = d.on_request(req, 2.0, WALL, dialog_id)  # a refresh in the dialog
    assert again is not None and again.status == 200 and d.subscriptions[dialog_id].expires_at == 602.0
    stop = platform_request("SUBSCRIBE", d.device_id, b"", [("Expires", "0")])
    d.on_request(stop, 3.0, WALL, dialog_id)
    (n,) = d.drain()
    assert isinstance(n, Notify) and dict(n.headers)["Subscription-State"].startswith("terminated")
    assert not d.subscriptions


def test_a_fetch_gets_one_terminated_notify_and_no_subscription() -> None:
    d = _registered("tianwang-nvr")
    req, reply = _subscribe(d, encode(CatalogQuery(sn=22, device_id=d.device_id)), 0)
    assert reply.status == 200 and ("Expires", "0") in reply.headers
    (n,) = d.drain()
    assert isinstance(n, Notify) and n.dialog_id == (req.call_id, reply.to_tag, "pf1")
    assert dict(n.headers)["Subscription-State"] == "terminated;reason=timeout"
    assert not d.subscriptions
